#!/usr/bin/env python3
"""Where a process's CPU goes, from a `perf record -g` file. Called by `bench/run.sh profile`.

    python3 bench/perfsummary.py PERF_DATA

Kernel stacks are complete (the kernel keeps frame pointers), so a kernel sample is charged to
the system call it happened in (sendto, recvfrom, epoll_wait, futex...) or to the interrupt /
scheduler path. User stacks are not (the release build has no frame pointers), so a user sample
is charged by its own symbol: sqlparser, the allocator, memcpy, tokio, shardgate's own code.
"""
import collections
import re
import subprocess
import sys

data = sys.argv[1]
out = subprocess.run(
    ["perf", "script", "-i", data, "-F", "ip,sym,dso"],
    capture_output=True, text=True, errors="replace",
).stdout

samples = []
cur = []
for line in out.splitlines():
    if not line.strip():
        if cur:
            samples.append(cur)
        cur = []
        continue
    m = re.match(r"\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$", line)
    if m:
        cur.append((m.group(2), m.group(3)))
if cur:
    samples.append(cur)

total = len(samples)
if not total:
    print("no samples")
    sys.exit(0)


def user_cat(sym, dso):
    s = sym
    if "sqlparser" in s:
        return "user: sqlparser (tokenize + parse)"
    if re.search(r"(^|_)(malloc|free|realloc|calloc)|_int_malloc|_int_free|cfree|malloc_consolidate|unlink_chunk|tcache", s):
        return "user: malloc/free"
    if "memmove" in s or "memcpy" in s or "memset" in s or "memcmp" in s or "strlen" in s:
        return "user: memcpy/memmove/memset"
    if "tokio" in s or "mio" in s or "parking_lot" in s:
        return "user: tokio runtime"
    if "mysql_common" in s:
        return "user: mysql_common"
    if "shardgate" in s and "router" in s:
        return "user: shardgate router"
    if "shardgate" in s and "protocol" in s:
        return "user: shardgate protocol"
    if "shardgate" in s:
        return "user: shardgate other"
    if dso.startswith("libc") or "libc.so" in dso:
        return "user: libc other (syscall stubs...)"
    return "user: other (%s)" % dso.split("/")[-1]


SYSCALL = re.compile(r"__(?:x64|ia32)_sys_(\w+)")
cats = collections.Counter()
kern_leaf = collections.Counter()
user_leaf = collections.Counter()
for st in samples:
    leaf_sym, leaf_dso = st[0]
    if "kernel" in leaf_dso or leaf_sym.startswith("[k]"):
        kern_leaf[leaf_sym] += 1
        sc = None
        for sym, dso in st:
            m = SYSCALL.search(sym)
            if m:
                sc = m.group(1)
                break
        if sc:
            cats["kernel: syscall %s" % sc] += 1
        else:
            names = " ".join(s for s, _ in st)
            if "irqentry_exit" in names or "asm_sysvec" in names or "asm_common_interrupt" in names:
                cats["kernel: interrupts / preemption"] += 1
            elif "schedule" in names:
                cats["kernel: scheduler (other)"] += 1
            else:
                cats["kernel: other"] += 1
    else:
        user_leaf[(leaf_sym, leaf_dso)] += 1

pretty = {}
for (sym, dso), n in user_leaf.items():
    cats[user_cat(pretty.get(sym, sym), dso)] += n

pc = lambda n: "%5.1f%%" % (100.0 * n / total)
print("samples: %d" % total)
print("### CPU by category (kernel by system call, user by leaf symbol)")
for k, n in cats.most_common():
    if n * 200 >= total:
        print("%s  %s" % (pc(n), k))
print("### top kernel symbols (self)")
for k, n in kern_leaf.most_common(6):
    print("%s  %s" % (pc(n), k))
print("### top user symbols (self)")
for (sym, dso), n in user_leaf.most_common(18):
    print("%s  %s  [%s]" % (pc(n), re.sub(r"::h[0-9a-f]{16}$", "", pretty.get(sym, sym))[:110], dso.split("/")[-1]))
