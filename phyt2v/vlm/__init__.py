"""The one shared VLM runtime (Qwen2-VL family): loaded once, used by the captioner, the vlm-judge scorer and
the vlm LLM."""
