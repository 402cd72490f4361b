import DeerFlowCLI

#if canImport(Glibc)
import Glibc

/// glibc gives threads that allocate at the same time arenas of their own, up to eight per core,
/// each keeping freed memory for itself: a server that had run W1 over 16 connections, W2 and W3
/// kept 2–3 MiB more resident with them than with one arena per core (README, Performance). One
/// per core, unless `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` says otherwise; before any other thread
/// starts. `mallopt` is looked up at run time: Swift's Glibc module does not import `<malloc.h>`.
func limitMallocArenas() {
    guard getenv("MALLOC_ARENA_MAX") == nil, getenv("GLIBC_TUNABLES") == nil, let symbol = dlsym(nil, "mallopt") else { return }
    let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    let arenaMax: Int32 = -8  // M_ARENA_MAX
    _ = mallopt(arenaMax, Int32(clamping: max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
}

limitMallocArenas()
#endif

await DeerFlowCommandLine.main()
