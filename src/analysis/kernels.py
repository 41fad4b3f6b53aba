"""Fresh kernels without the start-up cost, for the batch.

Starting a notebook kernel costs about two seconds of CPU before the first cell does any work: a new Python,
then ipykernel, IPython, pandas, matplotlib and this package, imported again for every notebook. The batch
runs 4 notebooks per reporting year, so it pays this dozens of times.

Here each batch worker starts one *kernel server* process that imports all of that once and then, for every
kernel the notebook client asks for, forks a child that becomes an ordinary IPython kernel (the one the kernel
spec names, ``python -m ipykernel_launcher -f <connection file>``, with the client's environment and working
folder). Every notebook still gets its own new process: its own namespace, no state left by another notebook —
what it inherits is only what importing the modules does, which a new kernel would do the same way. The
notebook client talks to it over the connection file exactly as to a kernel it launched itself.

Used only where it is safe and known to work: POSIX with ``os.fork`` and ``os.pidfd_open`` (Linux), and a
kernel spec that runs ``ipykernel_launcher`` with this Python. Anywhere else, or with ``ANALYSIS_FORK_KERNELS=0``
in the environment, kernels are launched the usual way.

Lifetimes: the server exits when its worker closes the connection (or dies), and a forked kernel exits when the
server is gone (ipykernel's parent poller), so a killed batch leaves no kernel behind.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

ENV_SWITCH = "ANALYSIS_FORK_KERNELS"

# Imported once by the server, before any fork: what the kernel itself needs, and what the notebooks import.
# A module missing here is simply imported by the notebook, as in any kernel. Never matplotlib_inline: importing
# it hooks the inline backend into the IPython shell that exists at that moment (none, in the server), and the
# kernels would then store '<Figure size ...>' text instead of the charts (the batch checks they do not).
WARM_IMPORTS = (
    "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.debugger", "IPython", "IPython.display",
    "jupyter_client.session",
    "numpy", "pandas", "pyarrow.parquet", "matplotlib.pyplot",
    "analysis.config", "analysis.template", "analysis.indicators", "analysis.report", "analysis.plots",
    "analysis.narrative", "analysis.clean", "analysis.pipeline_projection",
)


def enabled() -> bool:
    """Forked kernels are possible here and not switched off."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "no", "false", "off"):
        return False
    return hasattr(os, "fork") and hasattr(os, "pidfd_open") and sys.platform.startswith("linux")


def _launcher_args(cmd: list[str]) -> tuple[list[str], list[str]] | None:
    """``[python, *flags, -m, ipykernel_launcher, *args]`` -> (interpreter + flags, args); None otherwise."""
    try:
        i = cmd.index("-m")
    except ValueError:
        return None
    if i + 1 >= len(cmd) or cmd[i + 1] != "ipykernel_launcher":
        return None
    # the same interpreter path (a venv is told by its path, not by the binary it links to), flags only -X
    if os.path.abspath(cmd[0]) != os.path.abspath(sys.executable) or any(not a.startswith("-X") for a in cmd[1:i]):
        return None
    return [sys.executable, *cmd[1:i]], cmd[i + 2:]


# --- the worker's side ---------------------------------------------------------------------------------------

class ForkedProcess:
    """The part of ``subprocess.Popen`` that jupyter_client uses, for a kernel forked by the server
    (not our child: its exit is watched through a pidfd)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._fd = os.pidfd_open(pid)

    def poll(self) -> int | None:
        if self.returncode is None:
            import select

            if select.select([self._fd], [], [], 0)[0]:
                self._exited()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        import select

        if self.returncode is None:
            if not select.select([self._fd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            self._exited()
        return self.returncode

    def _exited(self) -> None:
        self.returncode = 0  # the server reaps it; its exit status is not ours to read
        os.close(self._fd)

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            signal.pidfd_send_signal(self._fd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class KernelServer:
    """One per worker process: started on first use, asked for a kernel per notebook."""

    _instance: KernelServer | None = None

    def __init__(self, interpreter: list[str]):
        self.interpreter = interpreter
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen([*interpreter, "-m", "analysis.kernels", str(theirs.fileno())],
                                     pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
        self.sock = ours
        self.reader = ours.makefile("r", encoding="utf-8")
        reply = self._reply()
        if reply.get("ready") is not True:
            raise RuntimeError(f"kernel server did not start: {reply}")

    @classmethod
    def get(cls, interpreter: list[str]) -> KernelServer:
        server = cls._instance
        if server is None or server.proc.poll() is not None or server.interpreter != interpreter:
            if server is not None:
                server.close()
            server = cls._instance = cls(interpreter)
        return server

    def _reply(self) -> dict:
        line = self.reader.readline()
        if not line:
            raise RuntimeError("kernel server exited")
        return json.loads(line)

    def spawn(self, args: list[str], env: dict[str, str], cwd: str) -> ForkedProcess:
        self.sock.sendall((json.dumps({"args": args, "env": env, "cwd": cwd}) + "\n").encode("utf-8"))
        reply = self._reply()
        if "pid" not in reply:
            raise RuntimeError(f"kernel server could not start a kernel: {reply.get('error')}")
        return ForkedProcess(reply["pid"])

    def close(self) -> None:
        try:
            self.sock.close()
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()


IPC_PATH_LIMIT = 100  # a Unix socket path must fit in 108 bytes (sun_path), with the port appended


def _ipc_possible() -> bool:
    """Kernels can talk over Unix sockets here: POSIX, and a runtime folder short enough for socket paths."""
    if os.name != "posix":
        return False
    from jupyter_core.paths import jupyter_runtime_dir

    return len(os.path.join(jupyter_runtime_dir(), f"kernel-{uuid.uuid4()}-ipc-65535")) < IPC_PATH_LIMIT


@functools.cache
def kernel_manager_class(forked: bool = True):
    """An ``AsyncKernelManager`` for the batch's kernels (nbclient's ``kernel_manager_class``; papermill
    passes it through): kernels talk to the batch over Unix sockets rather than TCP ports on localhost where
    the system allows it (private to the machine's users by file permissions, and ipykernel no longer warns
    of unencrypted TCP on every notebook), and, with ``forked``, come from this worker's kernel server."""
    from jupyter_client import AsyncKernelManager
    from jupyter_client.provisioning import LocalProvisioner
    from traitlets import default

    class ForkingProvisioner(LocalProvisioner):
        async def launch_kernel(self, cmd: list[str], **kwargs: Any):
            split = _launcher_args(cmd)
            if split is None:
                return await super().launch_kernel(cmd, **kwargs)
            interpreter, args = split
            env = dict(kwargs.get("env") or os.environ)
            cwd = str(kwargs.get("cwd") or os.getcwd())
            self.process = KernelServer.get(interpreter).spawn(args, env, cwd)
            self.pid, self.pgid, self.cwd = self.process.pid, None, cwd
            return self.connection_info

    class BatchKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc" if _ipc_possible() else "tcp"

        async def _async_pre_start_kernel(self, **kw: Any):
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            if self.transport == "ipc":  # sockets by absolute path, one set per kernel (the kernel runs
                from jupyter_core.paths import jupyter_runtime_dir  # in notebooks/, the client elsewhere)

                runtime = jupyter_runtime_dir()
                os.makedirs(runtime, mode=0o700, exist_ok=True)
                self.ip = os.path.join(runtime, f"kernel-{self.kernel_id}-ipc")
            if forked and self.provisioner is None:
                self.provisioner = ForkingProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec,
                                                      parent=self)
            return await super()._async_pre_start_kernel(**kw)

    return BatchKernelManager


# --- the server's side ---------------------------------------------------------------------------------------

def _reap(_signum, _frame) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve(fd: int) -> None:
    import importlib

    start_dir = os.getcwd()
    for name in WARM_IMPORTS:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: S112 - a module that cannot be imported here is imported (or fails) in the notebook
            continue
    import importlib.util

    launcher = importlib.util.find_spec("ipykernel_launcher").origin
    sock = socket.socket(fileno=fd)
    reader = sock.makefile("r", encoding="utf-8")
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is for the batch, which stops us
    sock.sendall(b'{"ready": true}\n')
    children: set[int] = set()
    for line in reader:  # one request per kernel; the loop ends when the worker closes the socket
        request = json.loads(line)
        try:
            pid = os.fork()
        except OSError as exc:
            sock.sendall((json.dumps({"error": str(exc)}) + "\n").encode("utf-8"))
            continue
        if pid == 0:
            reader.close()
            sock.close()
            _become_kernel(launcher, request["args"], request["env"], request["cwd"], start_dir)
        children.add(pid)
        sock.sendall((json.dumps({"pid": pid}) + "\n").encode("utf-8"))
    for pid in children:  # the worker is gone: so are its kernels
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _become_kernel(launcher: str, args: list[str], env: dict[str, str], cwd: str, start_dir: str) -> None:
    """In the forked child: set up what ``python -m ipykernel_launcher ARGS`` would have, and run it."""
    code = 0
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()  # its own session, as jupyter_client starts kernels (interrupts reach only the kernel)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        server = os.getppid()
        os.environ["JPY_PARENT_PID"] = str(server)
        sys.argv = [launcher, *args]
        if sys.path and (sys.path[0] in ("", start_dir) or Path(sys.path[0]) == Path(start_dir)):
            del sys.path[0]  # as ipykernel_launcher does with its own folder
        from ipykernel import kernelapp

        # parent_handle's default was read from the environment when the server imported ipykernel: give it
        # here, so the kernel exits if the server goes away (and behaves as a kernel with a parent)
        kernelapp.IPKernelApp.launch_instance(parent_handle=server)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: S110
                pass
        os._exit(code)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
