"""Pass A, first half: detect people, cut shots, track them, and turn tracks into switch-free tracklets."""
