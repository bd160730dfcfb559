//! The `physio` binary: everything lives in the library; see `physio::cli`.
//!
//! mimalloc replaces the system allocator: conversion allocates and frees row-group-sized
//! buffers (tens of MB) in a loop, which glibc serves with a fresh `mmap` each time, so
//! every byte was page-faulted in, zeroed by the kernel and unmapped again. mimalloc
//! keeps freed memory for reuse; its purge delay is raised from 10 ms to 1 s so memory
//! freed by one row group is still there for the next (measured in `docs/parquet.md`:
//! 0.33 → 0.17 s of system time on the benchmark corpus).

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mimalloc.h` (`mi_option_e`, v2 and v3); the
/// Rust bindings do not name it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

// The crate denies unsafe code; this one FFI call is the exception.
#[allow(unsafe_code)]
fn main() -> ExitCode {
    // SAFETY: sets a documented mimalloc option to a valid value (milliseconds); mimalloc
    // reads options atomically, so this is safe at any point of the process.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    physio::cli::main()
}
