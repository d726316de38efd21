// fancam web app: uploads (drag and drop, progress) and the job page's event stream.
// Everything else is server-rendered HTML swapped in by htmx.
"use strict";
(function () {
  const $ = (selector, root) => (root || document).querySelector(selector);
  const MB = 1048576;

  // ------------------------------------------------------------------------------ upload page
  function setupHome(form) {
    const drop = $("#drop"), fileInput = $("#video-file"), source = $("#video-source");
    const analyse = $("#analyse"), message = $("#message"), progress = $("#upload-progress");
    const chosen = $("#video-chosen"), members = $("#members"), zipInput = $("#gallery-zip");
    const maxVideo = Number(form.dataset.maxVideo), maxPhoto = Number(form.dataset.maxPhoto);
    let file = null;

    const say = (text) => { message.textContent = text; message.hidden = !text; };
    const refresh = () => { analyse.disabled = !(file || (source && source.value.trim())); };
    const choose = (f) => {
      file = f;
      if (f) chosen.textContent = `${f.name} (${(f.size / MB).toFixed(1)} MB)`;
      say("");
      refresh();
    };
    fileInput.addEventListener("change", () => choose(fileInput.files[0] || null));
    if (source) source.addEventListener("input", () => { say(""); refresh(); });
    ["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    }));
    ["dragleave", "drop"].forEach((name) => drop.addEventListener(name, (e) => {
      e.preventDefault();
      drop.classList.remove("over");
    }));
    drop.addEventListener("drop", (e) => {
      if (e.dataTransfer && e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
    });
    $("#add-member").addEventListener("click", () => {
      const row = $("#member-row").content.firstElementChild.cloneNode(true);
      $(".remove", row).addEventListener("click", () => row.remove());
      members.appendChild(row);
      $(".member-name", row).focus();
    });

    // One request; resolves with the JSON answer, rejects with the server's one-line message.
    const call = (method, url, body, headers, what) => new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      Object.entries(headers || {}).forEach(([k, v]) => xhr.setRequestHeader(k, v));
      if (what) {
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable) progress.textContent = `Uploading ${what}: ${Math.round(100 * e.loaded / e.total)}%`;
        };
      }
      xhr.onload = () => {
        let data;
        try { data = JSON.parse(xhr.responseText); } catch (err) { data = { error: xhr.responseText.trim() }; }
        if (xhr.status >= 400 || data.error) reject(new Error(data.error || `the server answered ${xhr.status}`));
        else resolve(data);
      };
      xhr.onerror = () => reject(new Error("the connection to fancam was lost; is it still running?"));
      xhr.send(body === undefined ? null : body);
    });

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      analyse.disabled = true;
      say("");
      let id = null;
      try {
        const fields = new FormData();
        const typed = source ? source.value.trim() : "";
        if (file) {
          if (file.size > maxVideo) throw new Error(`the video is larger than the limit of ${Math.round(maxVideo / MB)} MB`);
          fields.append("name", file.name);
        } else {
          fields.append("source", typed);
        }
        const rows = Array.from(members.querySelectorAll(".member"));
        rows.forEach((row) => {
          const name = $(".member-name", row).value.trim(), photos = $(".member-photos", row).files;
          if (photos.length && !name) throw new Error("give the name of the member whose photos you chose");
          if (name && !photos.length) throw new Error(`choose at least one photo of ${name}`);
          Array.from(photos).forEach((p) => {
            if (p.size > maxPhoto) throw new Error(`${p.name} is larger than the limit of ${Math.round(maxPhoto / MB)} MB per photo`);
          });
        });
        id = (await call("POST", "/api/jobs", fields)).id;
        const named = { "X-File-Name": encodeURIComponent(file ? file.name : "") };
        if (file) await call("PUT", `/api/jobs/${id}/video`, file, named, "the video");
        if (zipInput.files.length) await call("PUT", `/api/jobs/${id}/gallery`, zipInput.files[0], {}, "the gallery");
        for (const row of rows) {
          const name = $(".member-name", row).value.trim();
          for (const photo of $(".member-photos", row).files) {
            await call("PUT", `/api/jobs/${id}/photos?member=${encodeURIComponent(name)}`, photo,
              { "X-File-Name": encodeURIComponent(photo.name) }, `photos of ${name}`);
          }
        }
        progress.textContent = "Checking the video…";
        const started = await call("POST", `/api/jobs/${id}/start`);
        window.location.assign(started.url);
      } catch (err) {
        say(err.message);
        progress.textContent = "";
        if (id) fetch(`/jobs/${id}/delete`, { method: "POST" }).catch(() => {});
        refresh();
      }
    });
  }

  // -------------------------------------------------------------------------------- job page
  function setupJob(root) {
    const id = root.dataset.job;
    let state = root.dataset.state;
    const scrub = $("#scrub"), time = $("#scrub-time");
    if (scrub) scrub.addEventListener("input", () => { time.textContent = `${Number(scrub.value).toFixed(2)} s`; });
    document.body.addEventListener("htmx:responseError", (e) => {
      const box = $("#render-message") || $("#status");
      if (box) box.innerHTML = "";
      if (box) box.append(Object.assign(document.createElement("p"), {
        className: "message", textContent: e.detail.xhr.responseText.trim() || "the server could not answer",
      }));
    });
    // The chosen performer is marked on the contact sheet and on the frame.
    const mark = () => {
      const field = $("#render-form input[name=person]");
      const chosen = field ? field.value : "";
      document.querySelectorAll(".person, .box").forEach((el) => el.classList.toggle("chosen", el.dataset.person === chosen));
    };
    document.body.addEventListener("htmx:afterSettle", mark);
    mark();
    if (!window.EventSource) return;
    const events = new EventSource(`/jobs/${id}/events`);
    events.addEventListener("status", (e) => {
      const status = $("#status");
      if (status) { status.innerHTML = e.data; htmx.process(status); }
    });
    events.addEventListener("render", (e) => {
      const item = JSON.parse(e.data), list = $("#renders");
      const old = document.getElementById(`render-${item.id}`);
      if (old && old.classList.contains("done")) return; // never reset a video that may be playing
      const fresh = document.createRange().createContextualFragment(item.html).firstElementChild;
      if (old) old.replaceWith(fresh);
      else if (list) list.prepend(fresh);
      else return;
      htmx.process(fresh);
    });
    events.addEventListener("state", (e) => {
      if (e.data === "deleted") { window.location.assign("/"); return; }
      const wasReady = state === "ready";
      state = e.data;
      root.dataset.state = state;
      if (wasReady !== (state === "ready")) window.location.reload(); // the page's sections change
    });
  }

  const form = $("#new-job");
  if (form) setupHome(form);
  const job = $("#job");
  if (job) setupJob(job);
})();
