/*
 * The sandbox's stand-in for cluster DNS, for clients that run outside the (simulated) cluster.
 *
 * In a real cluster a TiKV store advertises a name such as tikv-1.tikv-peer.tikv.svc:20160 and
 * cluster DNS resolves it. The sandbox has no cluster DNS, so a process started with
 * LD_PRELOAD=<this library> and CHAOSDEMO_HOSTS_FILE=<file> resolves the names listed in that
 * file (lines "name address", written by the emulator as stores come and go) to their loopback
 * addresses; every other name goes to the system's resolver unchanged. The file is read on each
 * lookup, so a store that moves is found at its new address.
 *
 * Works for any client that resolves through libc's getaddrinfo: TiKV's Rust client (hyper's
 * resolver), and Go programs built with cgo and run with GODEBUG=netdns=cgo.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static int lookup(const char *name, char *address, size_t size) {
    const char *path = getenv("CHAOSDEMO_HOSTS_FILE");
    if (path == NULL || name == NULL) return 0;
    FILE *file = fopen(path, "r");
    if (file == NULL) return 0;
    char line[512], listed[256], found[128];
    int hit = 0;
    while (!hit && fgets(line, sizeof line, file) != NULL) {
        if (sscanf(line, "%255s %127s", listed, found) == 2 && strcasecmp(listed, name) == 0) {
            snprintf(address, size, "%s", found);
            hit = 1;
        }
    }
    fclose(file);
    return hit;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    static getaddrinfo_fn real = NULL;
    if (real == NULL) real = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    char address[128];
    if (lookup(node, address, sizeof address)) return real(address, service, hints, res);
    return real(node, service, hints, res);
}
