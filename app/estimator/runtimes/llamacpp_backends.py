"""llama.cpp's ggml backends: what each changes in the buffers llama.cpp allocates. A table keyed by name.

What differs between backends (ggml-org/llama.cpp; commits named per field):
- the model buffer's layout: ggml-cuda (CUDA, and ROCm, which is ggml-cuda built with HIP) and ggml-sycl pad
  a quantized tensor's last row to MATRIX_ROW_PADDING = 512 elements (get_alloc_size) and align to 128 B;
  ggml-metal and ggml-vulkan add no padding (ggml-metal aligns buffers to 32 B, Vulkan to the device's
  minStorageBufferOffsetAlignment, at most 256 B on the GPUs we list);
- the host buffer type beside the device (ggml_backend_dev_host_buffer_type): pinned CUDA_Host / ROCm_Host /
  Vulkan_Host / SYCL_Host memory, or plain CPU memory on Metal (unified memory; the GPU reads host
  buffers in place, so the scheduler copies no graph inputs into the Metal compute buffer);
- the compute graph's split (`graph`): "2025" is the CUDA model fitted to field cases L1-L4 (builds
  b2961-b5781 on CUDA, Vulkan and SYCL); "2026" follows the 2026 graph (src/llama-graph.cpp at 00395eb,
  build_attn_inp_kq_mask: "flash attention requires an f16 mask", so the KQ mask input is F16 with FA)
  and the 2026 logs G12 (Metal) and G13 (ROCm).

Releases matter as much as backends here: llama.cpp PR 23764 (merged 2026-05-27) made the KQ mask input F16
under flash attention (before it, an F32 mask plus an F16 cast), and PR 23861 (2026-05-29) lets llama-server
reserve logits for n_seq outputs instead of n_ubatch. G12 (2026-04-20) predates both, G13 (Ollama 0.30, June
2026) has the first but still reserves n_ubatch outputs; every rule here reserves n_ubatch outputs, so for a
llama-server build with PR 23861 our device compute buffer is high by up to n_vocab x (n_ubatch - n_seq) x 4 B
(said in the answer's notes).

Fitted, not derived (say so wherever they are used): `host_rows` and `host_copies` of rocm and metal were
chosen so that G13's and G12's printed host compute buffers come out (G13: 281 MiB = F16 masks + 2 n_embd
rows; G12: 154 MiB = 4 x (F16 masks + 1 n_embd row), reason not identified in the source); they are a fit
on those two logs, not a check.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, repr=False)
class Backend:
    name: str  # the request's `backend` value
    label: str
    device: str  # the first device as llama.cpp names it in its logs and --fit-print
    host_buffer: str  # the host buffer type of its output and host compute buffers
    alignment: int  # buffer alignment of the model buffer, bytes
    row_padding: int  # quantized rows padded to this many elements (0: none)
    graph: str  # compute-buffer rules: "2025" (CUDA model, L1-L4) or "2026" (G12/G13)
    unified_memory: bool = False  # the GPU reads host buffers in place: no input copies in its compute buffer
    host_rows: int = 1  # n_embd x n_ubatch F32 rows in the host compute buffer (the looked-up embeddings, ...)
    host_copies: int = 1  # copies of the host compute buffer's inputs (fitted for metal, see above)
    gpu: bool = True  # False: the CPU backend, nothing offloaded
    # also the split-graph rules measured on this backend's grid (llamacpp_compute._split_*, model_specs/llamacpp/
    # grid-vulkan.json: llama.cpp 0c1e570); the larger figure of the two rule sets per side, as the request names no
    # llama.cpp release (the "2025" rules describe L2's b5781 build)
    split_grid: bool = False
    source: str = ""


BACKENDS: dict[str, Backend] = {b.name: b for b in [
    Backend("cuda", "CUDA", "CUDA0", "CUDA_Host", 128, 512, "2025",
            source="ggml/src/ggml-cuda/ggml-cuda.cu (get_alloc_size, MATRIX_ROW_PADDING); L1, L3"),
    Backend("rocm", "ROCm (HIP)", "ROCm0", "ROCm_Host", 128, 512, "2026", host_rows=2,
            source="ggml/src/ggml-cuda built with GGML_HIP (same get_alloc_size); G13 (host_rows fitted)"),
    Backend("vulkan", "Vulkan", "Vulkan0", "Vulkan_Host", 32, 0, "2025", split_grid=True,
            source="ggml/src/ggml-vulkan/ggml-vulkan.cpp (no get_alloc_size padding); L2; the Vulkan grid "
                   "(model_specs/llamacpp/grid-vulkan.json)"),
    Backend("metal", "Metal (Apple)", "MTL0", "CPU", 32, 0, "2026", unified_memory=True, host_copies=4,
            source="ggml/src/ggml-metal (buffers from host memory, no padding); G12 (host_copies fitted)"),
    Backend("sycl", "SYCL (Intel)", "SYCL0", "SYCL_Host", 128, 512, "2025",
            source="ggml/src/ggml-sycl/ggml-sycl.cpp (get_alloc_size pads like CUDA); L4"),
    Backend("cpu", "CPU only", "CPU", "CPU", 64, 0, "2025", gpu=False,
            source="ggml/src/ggml-cpu (TENSOR_ALIGNMENT); nothing offloaded"),
]}
DEFAULT_BACKEND = "cuda"
