/* A Vulkan layer that raises one device limit the driver reports: VkPhysicalDeviceLimits::maxStorageBufferRange.
 *
 * Why: Mesa 22.3's software driver lavapipe (Debian 12) reports maxStorageBufferRange = 2^27 (128 MiB) and no
 * VK_EXT_shader_64bit_indexing, so ggml-vulkan (ggml_backend_vk_device_supports_op, tensor_size_supported) refuses
 * every op with a tensor over 128 MiB: large output weights and expert tensors stay in host memory and the logits or
 * the KQ scores run on the CPU. A discrete GPU reports a far larger range, so with this layer the dry-run graph split
 * is the one such a GPU gets. The value comes from the environment (VK_LIMITS_MAX_STORAGE_BUFFER_RANGE, default
 * 0xFFFFFFFF, the largest a uint32_t field holds). Only the reported limit changes; nothing is executed in the dry
 * run. Loader/layer interface: the Khronos loader's LoaderLayerInterface.md (vk_layer.h, version 2).
 *
 * Build: cc -shared -fPIC -O2 -o libvk_limits_layer.so vk_limits_layer.c
 * Use:   VK_LAYER_PATH=<dir with the .so and vk_limits_layer.json> VK_INSTANCE_LAYERS=VK_LAYER_VRAM_limits
 */
#include <stdlib.h>
#include <string.h>
#include <vulkan/vk_layer.h>
#include <vulkan/vulkan.h>

#define EXPORT __attribute__((visibility("default")))

static PFN_vkGetInstanceProcAddr next_gipa;
static PFN_vkGetDeviceProcAddr next_gdpa;
static PFN_vkGetPhysicalDeviceProperties next_props;
static PFN_vkGetPhysicalDeviceProperties2 next_props2;
static PFN_vkGetPhysicalDeviceProperties2 next_props2_khr;

static void patch(VkPhysicalDeviceLimits *limits) {
    const char *env = getenv("VK_LIMITS_MAX_STORAGE_BUFFER_RANGE");
    limits->maxStorageBufferRange = env ? (uint32_t) strtoul(env, NULL, 0) : 0xFFFFFFFFu;
}

static VKAPI_ATTR void VKAPI_CALL props(VkPhysicalDevice pd, VkPhysicalDeviceProperties *p) {
    next_props(pd, p);
    patch(&p->limits);
}

static VKAPI_ATTR void VKAPI_CALL props2(VkPhysicalDevice pd, VkPhysicalDeviceProperties2 *p) {
    next_props2(pd, p);
    patch(&p->properties.limits);
}

static VKAPI_ATTR void VKAPI_CALL props2_khr(VkPhysicalDevice pd, VkPhysicalDeviceProperties2 *p) {
    next_props2_khr(pd, p);
    patch(&p->properties.limits);
}

static VKAPI_ATTR VkResult VKAPI_CALL create_instance(const VkInstanceCreateInfo *ci, const VkAllocationCallbacks *a,
                                                      VkInstance *instance) {
    VkLayerInstanceCreateInfo *link = (VkLayerInstanceCreateInfo *) ci->pNext;
    while (link && !(link->sType == VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO && link->function == VK_LAYER_LINK_INFO)) {
        link = (VkLayerInstanceCreateInfo *) link->pNext;
    }
    if (!link) {
        return VK_ERROR_INITIALIZATION_FAILED;
    }
    next_gipa = link->u.pLayerInfo->pfnNextGetInstanceProcAddr;
    link->u.pLayerInfo = link->u.pLayerInfo->pNext;
    PFN_vkCreateInstance next_create = (PFN_vkCreateInstance) next_gipa(VK_NULL_HANDLE, "vkCreateInstance");
    VkResult r = next_create(ci, a, instance);
    if (r == VK_SUCCESS) {
        next_props = (PFN_vkGetPhysicalDeviceProperties) next_gipa(*instance, "vkGetPhysicalDeviceProperties");
        next_props2 = (PFN_vkGetPhysicalDeviceProperties2) next_gipa(*instance, "vkGetPhysicalDeviceProperties2");
        next_props2_khr = (PFN_vkGetPhysicalDeviceProperties2) next_gipa(*instance, "vkGetPhysicalDeviceProperties2KHR");
    }
    return r;
}

static VKAPI_ATTR VkResult VKAPI_CALL create_device(VkPhysicalDevice pd, const VkDeviceCreateInfo *ci,
                                                    const VkAllocationCallbacks *a, VkDevice *device) {
    VkLayerDeviceCreateInfo *link = (VkLayerDeviceCreateInfo *) ci->pNext;
    while (link && !(link->sType == VK_STRUCTURE_TYPE_LOADER_DEVICE_CREATE_INFO && link->function == VK_LAYER_LINK_INFO)) {
        link = (VkLayerDeviceCreateInfo *) link->pNext;
    }
    if (!link) {
        return VK_ERROR_INITIALIZATION_FAILED;
    }
    PFN_vkGetInstanceProcAddr gipa = link->u.pLayerInfo->pfnNextGetInstanceProcAddr;
    next_gdpa = link->u.pLayerInfo->pfnNextGetDeviceProcAddr;
    link->u.pLayerInfo = link->u.pLayerInfo->pNext;
    PFN_vkCreateDevice next_create = (PFN_vkCreateDevice) gipa(VK_NULL_HANDLE, "vkCreateDevice");
    return next_create(pd, ci, a, device);
}

EXPORT VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL vk_limits_GetDeviceProcAddr(VkDevice device, const char *name) {
    return next_gdpa(device, name);
}

EXPORT VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL vk_limits_GetInstanceProcAddr(VkInstance instance, const char *name) {
    if (!strcmp(name, "vkGetInstanceProcAddr")) return (PFN_vkVoidFunction) vk_limits_GetInstanceProcAddr;
    if (!strcmp(name, "vkGetDeviceProcAddr")) return (PFN_vkVoidFunction) vk_limits_GetDeviceProcAddr;
    if (!strcmp(name, "vkCreateInstance")) return (PFN_vkVoidFunction) create_instance;
    if (!strcmp(name, "vkCreateDevice")) return (PFN_vkVoidFunction) create_device;
    if (!strcmp(name, "vkGetPhysicalDeviceProperties")) return (PFN_vkVoidFunction) props;
    if (!strcmp(name, "vkGetPhysicalDeviceProperties2")) return (PFN_vkVoidFunction) props2;
    if (!strcmp(name, "vkGetPhysicalDeviceProperties2KHR")) return (PFN_vkVoidFunction) props2_khr;
    return next_gipa ? next_gipa(instance, name) : NULL;
}

EXPORT VKAPI_ATTR VkResult VKAPI_CALL vkNegotiateLoaderLayerInterfaceVersion(VkNegotiateLayerInterface *v) {
    if (v->loaderLayerInterfaceVersion > 2) {
        v->loaderLayerInterfaceVersion = 2;
    }
    v->pfnGetInstanceProcAddr = vk_limits_GetInstanceProcAddr;
    v->pfnGetDeviceProcAddr = vk_limits_GetDeviceProcAddr;
    v->pfnGetPhysicalDeviceProcAddr = NULL;
    return VK_SUCCESS;
}
