"""A Vulkan layer (C source and manifest) the llama.cpp grid builds with cc: see vk_limits_layer.c."""
