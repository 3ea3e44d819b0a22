"""llama.cpp's HTTP server on a GGUF file, through PyPI's prebuilt ``xllamacpp`` wheel.

Run by deploy/llm_server.py with the interpreter of its own venv (``.stack/llm/xllamacpp-*``),
never the project's: so only the standard library and ``xllamacpp`` may be imported here.

    python deploy/xllamacpp_serve.py MODEL.gguf [--port 8088] [--alias NAME] [--ctx 8192]

It prints ``[PID] listening on http://HOST:PORT`` once the server accepts connections (the model
is loaded by then; port 0, the default, is a free one) and serves until SIGINT or SIGTERM.
"""

import argparse
import os
import signal
import sys

import xllamacpp  # type: ignore[import-not-found]  # only in the server's own venv

__all__ = ["main"]

_STOP = {signal.SIGINT, signal.SIGTERM}


def _params(args: argparse.Namespace) -> "xllamacpp.CommonParams":
    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = 1  # one call at a time gets the whole context
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.fit_params = False  # the context asked for, not one fitted to free memory
    params.ui = False
    return params


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--alias", default="local")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    # Blocked before the server's threads exist, so they inherit the mask and the signal is
    # left to sigwait below instead of killing the process mid-answer.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP)
    server = xllamacpp.Server(_params(args))
    print(f"[{os.getpid()}] listening on {server.listening_address}", flush=True)
    received = signal.sigwait(_STOP)
    print(f"stopping on signal {received}", flush=True)
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
