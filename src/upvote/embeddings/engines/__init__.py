"""The word2vec engines, in layers; nothing here imports a front door (word2vec.py,
distributed.py, cli.py).

- primitives.py: word2vec.c's building blocks as numba functions (generator, noise draw,
  sub-sampling, dynamic window, sigmoid and loss), shared by every numba kernel.
- common.py: what every engine and front door shares without torch or numba: the progress
  callback and bar, the learning-rate schedule, the atomic checkpoint writer.
- torch_common.py: what the torch-based engines share: the token stream in chunks, a step's Batch,
  the device check, the vector initialisation.
- cpu_kernels.py + cpu.py: the per-word Hogwild engine (numba), what `train()` runs on CPU.
- gpu.py: the Triton engine, what `train(device="cuda")` runs.
- batched_torch.py + batched_numba.py + batched.py: the batched engine distributed training runs,
  its step in PyTorch (CUDA) or numba (CPU), and the driver that picks and runs them.

docs/word2vec.md says why there are several engines; benchmarks/RESULTS.md has the measurements.
"""
