"""Where models run on one machine: where weights come from (the hub, local folders), devices and dtypes,
quantization, the memory plan and its parameter counts, the swap placement, and the lanes of a pipelined batch."""
