//! `limitprobe SUBCOMMAND ARGS... MARKER`: workloads that run into a
//! resource limit, for tests/limits.rs. Each prints one line on stdout when
//! it gets to the end on its own (`ok DETAIL`, exit 0) or when the kernel
//! refuses something (`denied ENAME after DETAIL`, exit 1); a workload the
//! kernel kills prints nothing more. Progress goes to stderr.
//!
//! The last argument is a marker the test looks for in /proc afterwards:
//! every process a subcommand starts carries it (forked children keep the
//! command line), so "nothing of the sandbox is left" is checkable.
//!
//! - `memory MIB MARKER`: allocate and touch MIB MiB, 1 MiB at a time.
//! - `forks N SECS MARKER`: fork N children that each sleep SECS; stop at the
//!   first refused fork; the parent exits at once, leaving the children.
//! - `spin MARKER`: burn CPU forever.
//! - `write PATH BYTES MARKER`: write BYTES bytes to PATH, 64 KiB at a time.
//! - `sleep SECS MARKER`: start a child that sleeps too, then sleep SECS.

use std::io::Write;
use std::time::Duration;

use nix::errno::Errno;
use nix::libc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["memory", mib, _] => memory(num(mib)),
        ["forks", n, secs, _] => forks(num(n), num(secs)),
        ["spin", _] => spin(),
        ["write", path, bytes, _] => write(path, num(bytes)),
        ["sleep", secs, _] => sleep(num(secs)),
        _ => {
            eprintln!("usage: limitprobe memory MIB | forks N SECS | spin | write PATH BYTES | sleep SECS  MARKER");
            2
        }
    };
    std::process::exit(code)
}

fn num(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| {
        eprintln!("limitprobe: not a number: {s}");
        std::process::exit(2)
    })
}

fn say(line: &str) -> i32 {
    println!("{line}");
    let _ = std::io::stdout().flush();
    if line.starts_with("ok") {
        0
    } else {
        1
    }
}

fn memory(mib: u64) -> i32 {
    let mut chunks: Vec<*mut u8> = Vec::new();
    for i in 0..mib {
        // SAFETY: an anonymous private mapping; no file, no fixed address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                1 << 20,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return say(&format!("denied {:?} after {i} MiB", Errno::last()));
        }
        // Touch every page: memory is charged when used, not when mapped.
        // SAFETY: p is a fresh 1 MiB read-write mapping.
        unsafe { std::ptr::write_bytes(p as *mut u8, 0xa5, 1 << 20) };
        chunks.push(p as *mut u8);
        if i % 64 == 0 {
            eprintln!("limitprobe: {i} MiB");
        }
    }
    say(&format!("ok {} MiB", chunks.len()))
}

fn forks(n: u64, secs: u64) -> i32 {
    for i in 0..n {
        // SAFETY: the child only sleeps and exits (async-signal-safe calls).
        match unsafe { libc::fork() } {
            0 => {
                // SAFETY: sleep and _exit are async-signal-safe.
                unsafe {
                    libc::sleep(secs as libc::c_uint);
                    libc::_exit(0)
                }
            }
            -1 => return say(&format!("denied {:?} after {i} forks", Errno::last())),
            _ => {}
        }
    }
    say(&format!("ok {n} forks"))
}

fn spin() -> i32 {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn write(path: &str, bytes: u64) -> i32 {
    let mut f = match std::fs::File::create(path) {
        Ok(f) => f,
        Err(e) => return say(&format!("denied {e} after 0 bytes")),
    };
    let chunk = vec![b'x'; 64 << 10];
    let mut done = 0u64;
    while done < bytes {
        let n = chunk.len().min((bytes - done) as usize);
        match f.write(&chunk[..n]) {
            Ok(w) => done += w as u64,
            Err(e) => {
                let name = e
                    .raw_os_error()
                    .map(|n| format!("{:?}", Errno::from_raw(n)))
                    .unwrap_or_else(|| e.to_string());
                return say(&format!("denied {name} after {done} bytes"));
            }
        }
    }
    say(&format!("ok {done} bytes"))
}

fn sleep(secs: u64) -> i32 {
    // SAFETY: the child only sleeps and exits.
    if unsafe { libc::fork() } == 0 {
        std::thread::sleep(Duration::from_secs(secs));
        // SAFETY: _exit is always sound.
        unsafe { libc::_exit(0) }
    }
    eprintln!("limitprobe: sleeping {secs} s");
    std::thread::sleep(Duration::from_secs(secs));
    say(&format!("ok slept {secs} s"))
}
