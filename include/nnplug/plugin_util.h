/*
 * Helpers for writing plugins: header-only, static inline, and built on
 * nothing but <nnplug/plugin.h>, so a plugin compiled out of tree can use
 * them too and no symbol crosses a plugin boundary.
 */
#ifndef NNPLUG_PLUGIN_UTIL_H
#define NNPLUG_PLUGIN_UTIL_H

#include <nnplug/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The body of a plugin's entry function: returns plugin when host has this
 * header's major version and at least min_minor (the newest host field the
 * plugin calls); otherwise says why through host->log (NNP_LOG_ERROR, which
 * the host reports with its load error) and returns NULL.
 *
 *     NNP_EXPORT const nnp_plugin *nnp_plugin_entry(const nnp_host *host)
 *     {
 *         return nnp_pu_accept_host(host, 1, &my_plugin);
 *     }
 */
static inline const nnp_plugin *nnp_pu_accept_host(const nnp_host *host, unsigned min_minor,
                                                   const nnp_plugin *plugin)
{
    if (!host || host->abi_major != NNP_ABI_MAJOR)
        return NULL;   /* another major: its table layout is unknown, log included */
    if (NNP_HOST_AT_LEAST(host, min_minor))
        return plugin;
    if (NNP_HAS_FIELD(host, nnp_host, log) && host->log)
        host->log(NNP_LOG_ERROR,
                  "plugin '%s' needs an nnplug host with ABI %d.%u or later (this host "
                  "offers %u.%u)",
                  plugin->name, NNP_ABI_MAJOR, min_minor, (unsigned)host->abi_major,
                  (unsigned)host->abi_minor);
    return NULL;
}

#ifdef __cplusplus
}
#endif
#endif /* NNPLUG_PLUGIN_UTIL_H */
