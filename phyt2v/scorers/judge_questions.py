"""The two VideoCon-Physics questions the ``vlm-judge`` scorer asks, locally or over an endpoint.

SA is asked about the user's ORIGINAL prompt (never a refined one: that would inflate SA)."""

SA_QUESTION = 'Does this video entail the description: "{prompt}"?'
PC_QUESTION = "Does this video follow the physical laws?"
