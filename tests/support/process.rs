//! Server processes that never outlive the test process.
//!
//! Test statics are never dropped and test threads come and go, so no destructor can be trusted
//! to stop a server. Three layers make sure none is left behind:
//!
//! 1. **PR_SET_PDEATHSIG.** Every server is spawned by one launcher thread that never returns,
//!    with the parent-death signal set to SIGKILL in the child before `exec`. Linux sends that
//!    signal when the *thread* that forked the child ends, which is why a short-lived test thread
//!    must not spawn servers itself. The launcher thread ends only with the process, however the
//!    process ends (normal exit, panic, SIGKILL), so the kernel kills every server then.
//! 2. **atexit.** On a normal exit (the harness returns or calls `process::exit`) a hook kills and
//!    reaps every live server and removes every cluster directory, so no zombie is left for a slow
//!    init to reap and no data directory is left in the temp dir.
//! 3. **Reaping.** Cluster directories live under one root and carry the owner's pid; the next
//!    cluster start removes the directories of owners that are gone (when step 2 could not run).
//!
//! The run scripts written by `scripts/cluster.sh` `exec` mariadbd, so the process spawned here
//! *is* the server, and the death signal (kept across exec) reaches it.

use std::collections::HashMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Live children by pid, and cluster dirs to remove at exit.
#[derive(Default)]
struct Registry {
    children: HashMap<u32, Child>,
    dirs: Vec<PathBuf>,
}

type Job = (Command, mpsc::Sender<io::Result<Child>>);

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    let reg = REGISTRY.get_or_init(|| {
        // SAFETY: registering a plain `extern "C" fn` with no arguments.
        unsafe { libc::atexit(cleanup_at_exit) };
        Mutex::default()
    });
    // A test that panicked while holding the lock leaves it poisoned; the data is still right.
    reg.lock().unwrap_or_else(|e| e.into_inner())
}

/// The sender of the launcher thread's queue; the thread lives as long as the process.
fn launcher() -> &'static Mutex<mpsc::Sender<Job>> {
    static LAUNCHER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    LAUNCHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("server-launcher".into())
            .spawn(move || {
                // The sender is in a static, so this loop only ends when the process does.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the server launcher thread");
        Mutex::new(tx)
    })
}

/// Spawns `program` (with `args`) from the launcher thread, with stdout/stderr appended to `log`.
/// Returns its pid; the child is kept in the registry until [`kill`] or [`wait_exit`].
pub fn spawn(program: &Path, args: &[&str], log: &Path) -> io::Result<u32> {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect: then nobody would kill us.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    launcher().lock().unwrap_or_else(|e| e.into_inner()).send((cmd, tx)).expect("server launcher thread is gone");
    let child = rx.recv().expect("server launcher thread is gone")?;
    let pid = child.id();
    registry().children.insert(pid, child);
    Ok(pid)
}

/// SIGKILLs the child `pid` and reaps it. Does nothing for a pid not (or no longer) ours.
pub fn kill(pid: u32) {
    let child = registry().children.remove(&pid);
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends signal `sig` (SIGSTOP, SIGCONT...) to the child `pid`, if it is still ours.
pub fn signal(pid: u32, sig: i32) {
    if registry().children.contains_key(&pid) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child.
        unsafe {
            libc::kill(pid as i32, sig);
        }
    }
}

/// True while the child `pid` has not exited.
pub fn is_running(pid: u32) -> bool {
    let mut reg = registry();
    match reg.children.get_mut(&pid) {
        Some(child) => matches!(child.try_wait(), Ok(None)),
        None => false,
    }
}

/// Waits up to `timeout` for the child `pid` to exit, then kills it. Returns whether it exited
/// by itself.
pub fn wait_exit(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_running(pid) {
        if Instant::now() > deadline {
            kill(pid);
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(pid); // reaps it and drops it from the registry
    true
}

/// Registers a cluster directory to remove at exit.
pub fn register_dir(dir: &Path) {
    registry().dirs.push(dir.to_path_buf());
}

/// Removes `dir` now and forgets it.
pub fn remove_dir(dir: &Path) {
    registry().dirs.retain(|d| d != dir);
    let _ = std::fs::remove_dir_all(dir);
}

extern "C" fn cleanup_at_exit() {
    let mut reg = registry();
    for (_, mut child) in reg.children.drain() {
        let _ = child.kill();
        let _ = child.wait();
    }
    for dir in reg.dirs.drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The root under which test clusters live: `$TMPDIR/shardgate-test-clusters`.
pub fn clusters_root() -> PathBuf {
    std::env::temp_dir().join("shardgate-test-clusters")
}

/// Makes a fresh cluster directory `<root>/<pid>-<n>` owned by this process, after removing the
/// directories of owners that no longer exist.
pub fn new_cluster_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let root = clusters_root();
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
    reap_stale(&root);
    let pid = std::process::id();
    let dir = root.join(format!("{pid}-{}", SEQ.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir); // a dead owner with our pid
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    register_dir(&dir);
    dir
}

/// Removes cluster dirs whose owning process is gone. Their servers died with the owner
/// (PDEATHSIG), so only files remain.
fn reap_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.split('-').next()).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let alive =
            unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
