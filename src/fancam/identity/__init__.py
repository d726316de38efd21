"""Pass A, second half: faces and bodies on sampled moments, then who is who (linking and naming)."""
