"""What a run leaves on disk: the run record and its folder, atomic writes, locks, secret scrubbing, output
paths, and video files."""
