"""GGUF, llama.cpp's file format: one subject in four modules, imported by name (no names re-exported here).

    rules.py     the file types llama.cpp writes: which GGML type each tensor gets, and its bytes
                 (llama.cpp src/llama-quant.cpp, as vendored in llama-cpp-python 0.3.36)
    arch.py      `general.architecture` values and the `{arch}.*` metadata keys, spec <-> keys
    reader.py    a GGUF file's header (metadata + tensor table) -> architecture, tensor types and bytes
    estimate.py  the llama.cpp estimate for a GGUF file the user has (its own tensors and keys)

Pure, like the rest of the estimator. Callers import the module they need
(`from app.estimator.gguf.rules import FILE_TYPES`): `rules` and `arch` load with the estimator itself
(quantization.py and the llama.cpp runtime use them), `reader` and `estimate` only where a file is read.
"""
