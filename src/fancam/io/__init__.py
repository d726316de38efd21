"""Input and output: streaming decode, H.264/AAC encode, content-keyed caches, remote videos, progress."""
