"""Text-to-video generator backends (see ``roles.VideoGenerator``)."""
