"""Captioner backends: describe what happens in a video (see ``roles.Captioner``)."""
