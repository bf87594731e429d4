"""The sandbox: one command under bubblewrap, with no network, no view of the
reviewer's files, a seccomp filter, resource limits and a wall-clock deadline.

What the sandboxed command sees (everything else of the machine does not exist
for it):

- /usr read-only (programs and libraries; /bin, /lib, /lib64, /sbin are the
  usual links into it), and of /etc only what LibreOffice, fontconfig and the
  dynamic loader read: fonts, LibreOffice's registry, ld.so.cache, alternatives,
  and a made-up /etc/passwd and /etc/group naming only the sandbox's user;
- the few read-only files or folders the caller names (the converter and its
  Python libraries), and small files made from bytes (``data_files``);
- a private /proc and a minimal /dev, and a size-limited tmpfs as /tmp and as
  the home folder, gone when the command ends.

The input document is not in it: it arrives on standard input, read from a file
descriptor we opened read-only, and the only output is standard output, a pipe
read by a strict parser (relay.reviewer.safe_copy.pixels). So no folder of the
host is writable from inside, not even an output folder.

Namespaces: ``--unshare-all`` (user, PID, IPC, network, UTS, cgroup) and no
further user namespaces inside (``--disable-userns``); ``--new-session`` (no
TIOCSTI into the reviewer's terminal), ``--die-with-parent``, ``--clearenv``,
``--cap-drop ALL``. A root caller is first made ``nobody``: the kernel does not
count root's processes against RLIMIT_NPROC, and root is no owner for a sandbox.

Limits: RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NOFILE and no core dumps
are set before bubblewrap starts; RLIMIT_NPROC is set by ``prlimit`` inside the
new user namespace (set outside it, it would count every process the reviewer
runs), before the command starts. A timer kills the whole process group at the
deadline; the PID namespace dies with its first process.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

MiB = 1024 * 1024
GiB = 1024 * MiB

NOBODY = 65534
SANDBOX_HOME = "/home/sandbox"
# /etc pieces LibreOffice, fontconfig and the loader read; absent ones are skipped.
ETC_READ_ONLY = (
    "/etc/fonts",
    "/etc/libreoffice",
    "/etc/ld.so.cache",
    "/etc/alternatives",
    "/etc/magic",
)
# Syscalls no document converter needs and sandbox escapes and kernel exploits
# like: each fails with EPERM (seccomp, below the namespaces bubblewrap made).
DENIED_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd", "fanotify_init",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr",
    "unshare", "setns",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "syslog", "acct", "quotactl", "uselib",
    "open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "vhangup",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "personality",
)
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """What one conversion may use. The defaults fit a long office file on a
    laptop; the tests pass smaller ones."""

    timeout: float = 180.0  # wall clock for the whole conversion, seconds
    memory: int = 3 * GiB  # RLIMIT_AS of each process (LibreOffice maps a lot)
    cpu: int = 300  # RLIMIT_CPU of each process, seconds
    file_size: int = 512 * MiB  # RLIMIT_FSIZE: any one file written inside
    tmp_size: int = 1 * GiB  # the tmpfs /tmp and home, each
    processes: int = 128  # RLIMIT_NPROC inside the sandbox's user namespace
    max_pages: int = 1000
    max_width: int = 10_000  # pixels (Dangerzone's own bounds)
    max_height: int = 10_000
    # All pixel bytes of one document (about 300 A4 pages at the converter's
    # resolution). The pages are held in the reviewer's own process until the PDF
    # is saved, and pixels an attacker makes incompressible stay that large: this
    # bounds what a document can make it hold.
    max_stream: int = 2 * GiB


class SandboxUnavailableError(RuntimeError):
    """bubblewrap (or a piece the sandbox needs) is missing or does not work here."""


@dataclass
class SandboxRun:
    """How a sandboxed command ended."""

    returncode: int
    timed_out: bool
    seconds: float
    stderr_tail: bytes = field(repr=False, default=b"")


def bwrap_path() -> str:
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailableError(
            "bubblewrap is not installed (Debian: apt-get install bubblewrap)"
        )
    return found


def seccomp_available() -> bool:
    """Whether the seccomp filter can be built here (pyseccomp and libseccomp present)."""
    try:
        import pyseccomp  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def seccomp_filter_fd() -> int | None:
    """A memfd holding the compiled seccomp filter (BPF), or None without pyseccomp.

    Default allow; the syscalls of DENIED_SYSCALLS fail with EPERM; sockets
    other than AF_UNIX fail with EAFNOSUPPORT (the network namespace has no
    interface but loopback anyway); clone() asking for a new namespace fails.
    """
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError):  # pyseccomp missing, or libseccomp.so.2 missing
        return None
    filt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            filt.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError, OSError):
            continue  # not a syscall on this architecture
    filt.add_rule(
        seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.NE, socket.AF_UNIX)
    )
    # clone() asking for any new namespace (user, mount, IPC, UTS, network, cgroup, PID).
    for flag in (0x10000000, 0x20000, 0x8000000, 0x4000000, 0x40000000, 0x2000000, 0x20000000):
        rule = seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag)
        filt.add_rule(seccomp.ERRNO(errno.EPERM), "clone", rule)
    # clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes
    # glibc fall back to clone(), which the rule above sees (as Flatpak does).
    filt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    fd = os.memfd_create("tiprelay-seccomp", 0)
    with os.fdopen(os.dup(fd), "wb") as out:
        filt.export_bpf(out)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _data_fd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def bwrap_argv(
    command: Sequence[str],
    *,
    limits: Limits,
    read_only: Sequence[tuple[str, str]] = (),
    data_fds: Sequence[tuple[int, str]] = (),
    seccomp_fd: int | None = None,
) -> list[str]:
    """The whole bubblewrap command line for ``command``."""
    argv = [
        bwrap_path(),
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--cap-drop", "ALL",
        "--hostname", "sandbox",
        "--ro-bind", "/usr", "/usr",
    ]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / top
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{top}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{top}"]
    for piece in ETC_READ_ONLY:
        if os.path.exists(piece):
            argv += ["--ro-bind", piece, piece]
    argv += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(limits.tmp_size), "--tmpfs", "/tmp",  # noqa: S108 (inside the sandbox)
        "--size", str(limits.tmp_size), "--tmpfs", SANDBOX_HOME,
    ]
    for source, dest in read_only:
        argv += ["--ro-bind", source, dest]
    for fd, dest in data_fds:
        argv += ["--ro-bind-data", str(fd), dest]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv += [
        "--setenv", "HOME", SANDBOX_HOME,
        "--setenv", "PATH", "/usr/bin:/bin",
        "--setenv", "LANG", "C.UTF-8",
        "--chdir", "/tmp",  # noqa: S108 (the sandbox's own tmpfs)
        "--",
        # Inside the new user namespace, before the command: the process limit.
        "/usr/bin/prlimit", f"--nproc={limits.processes}",
        *command,
    ]
    return argv


def _limit_resources(limits: Limits) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory, limits.memory))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu, limits.cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    return apply


def run_sandboxed(
    command: Sequence[str],
    *,
    stdin: int | IO[bytes],
    consume: Callable[[IO[bytes]], T],
    limits: Limits,
    read_only: Sequence[tuple[str, str]] = (),
    data_files: Sequence[tuple[bytes, str]] = (),
) -> tuple[T | BaseException, SandboxRun]:
    """Run ``command`` in the sandbox; ``consume`` reads its standard output.

    Returns what ``consume`` returned (or the exception it raised: the sandbox
    is then killed at once) and how the command ended. Never raises for what the
    command does; raises SandboxUnavailableError when the sandbox cannot start.
    """
    fds: list[int] = []
    try:
        seccomp_fd = seccomp_filter_fd()
        if seccomp_fd is not None:
            fds.append(seccomp_fd)
        data_fds = []
        uid = NOBODY if os.geteuid() == 0 else os.geteuid()
        gid = NOBODY if os.geteuid() == 0 else os.getegid()
        # LibreOffice will not start without a name for its user: a made-up one,
        # not the machine's /etc/passwd (which names the reviewer's accounts).
        identity_files = (
            (f"sandbox:x:{uid}:{gid}:sandbox:{SANDBOX_HOME}:/bin/false\n".encode(), "/etc/passwd"),
            (f"sandbox:x:{gid}:\n".encode(), "/etc/group"),
        )
        for data, dest in (*identity_files, *data_files):
            fd = _data_fd("tiprelay-data", data)
            fds.append(fd)
            data_fds.append((fd, dest))
        argv = bwrap_argv(
            command, limits=limits, read_only=read_only, data_fds=data_fds,
            seccomp_fd=seccomp_fd,
        )
        drop_root = os.geteuid() == 0
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=fds,
                start_new_session=True,
                user=NOBODY if drop_root else None,
                group=NOBODY if drop_root else None,
                extra_groups=[] if drop_root else None,
                preexec_fn=_limit_resources(limits),
                close_fds=True,
            )
        except OSError as exc:
            raise SandboxUnavailableError(f"bubblewrap could not start: {exc}") from exc
    finally:
        for fd in fds:
            os.close(fd)
    assert isinstance(proc.stdout, io.BufferedReader)
    assert isinstance(proc.stderr, io.BufferedReader)
    stdout, stderr = proc.stdout, proc.stderr
    timed_out = threading.Event()

    def kill_group() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def on_deadline() -> None:
        timed_out.set()
        kill_group()

    timer = threading.Timer(limits.timeout, on_deadline)
    timer.daemon = True
    stderr_tail = bytearray()

    def drain_stderr() -> None:
        while chunk := stderr.read1(65536):
            stderr_tail.extend(chunk)
            del stderr_tail[:-65536]

    drainer = threading.Thread(target=drain_stderr, daemon=True)
    timer.start()
    drainer.start()
    result: T | BaseException
    try:
        result = consume(stdout)
    except Exception as exc:
        result = exc
        kill_group()
    finally:
        # Whatever consume left unread: read it away (bounded by the deadline).
        while stdout.read1(1 << 20):
            pass
        returncode = proc.wait()
        timer.cancel()
        drainer.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    return result, SandboxRun(
        returncode=returncode,
        timed_out=timed_out.is_set(),
        seconds=time.monotonic() - started,
        stderr_tail=bytes(stderr_tail),
    )


def sandbox_python() -> str:
    """The interpreter used inside: the system's, which lives under /usr."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/{version}", "/usr/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise SandboxUnavailableError(
        "no Python under /usr/bin for the sandbox (Debian: apt-get install python3)"
    )
