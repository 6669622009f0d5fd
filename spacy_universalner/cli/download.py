"""``download``: fetch one file for a project step, and fail in one line when it cannot.

``spacy project assets`` (weasel) stops at an unreachable URL with a ``requests`` traceback, after
the benchmark copies it checks offline. Pile-NER-type, the one file that needs the network and is
only used by ``build-pile-ner``, is fetched by this command (``spacy project run pile-ner``) instead.
"""

import sys
from pathlib import Path
from urllib.parse import urlparse

import typer

from .app import app


def download(url: str, dest: Path, timeout: float = 30.0, progress: bool = True) -> Path:
    """Write ``url`` to ``dest`` through ``dest.part``, so an interrupted download never looks complete.

    Raises ``requests.RequestException`` or ``OSError``; the partial file is removed.
    """
    import requests
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with requests.get(url, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            size = int(response.headers.get("content-length") or 0) or None
            with (
                part.open("wb") as file_,
                tqdm(
                    total=size, unit="B", unit_scale=True, desc=dest.name, file=sys.stderr, disable=not progress
                ) as bar,
            ):
                for block in response.iter_content(1 << 20):
                    file_.write(block)
                    bar.update(len(block))
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(dest)
    return dest


# short_help: click cuts the command's line in --help at the first full stop ("e.g.") or at 45 characters.
@app.command("download", short_help="Fetch one file for a project step (Pile-NER-type)")
def download_command(
    url: str = typer.Argument(..., help="http(s) URL of the file"),
    dest: Path = typer.Argument(..., help="Where to write it (kept if it already exists)"),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for the server"),
) -> None:
    """Download one file for a project step, such as Pile-NER-type for build-pile-ner; one line, not a traceback, if it
    cannot.
    """
    import requests
    from wasabi import msg

    if dest.is_file() and dest.stat().st_size > 0:
        msg.good(f"{dest} is already there")
        return
    try:
        download(url, dest, timeout=timeout)
    except requests.HTTPError as err:  # raise_for_status's error carries the response; a bare one only its text
        answer = err.response.status_code if err.response is not None else err
        msg.fail(f"Could not download {dest}: {url} answered {answer}.", exits=1)
    except requests.RequestException as err:
        host = urlparse(url).netloc or url
        msg.fail(
            f"Could not download {dest}: {host} cannot be reached ({type(err).__name__}). Rerun when online, "
            f"or put the file there yourself.",
            exits=1,
        )
    except OSError as err:
        msg.fail(f"Could not write {dest}: {err}", exits=1)
    msg.good(f"Downloaded {dest} ({dest.stat().st_size / 2**20:.1f} MiB)")
