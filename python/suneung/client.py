"""A client of `suneung serve`'s JSON API (/api/v1), on the standard library alone.

Every call is one HTTP request; a refusal raises `SuneungError` with the server's own
message and status. The server checks everything it stores (ids, shapes, values), so
the client sends what it is given, as CSV, and says what the server says.
"""
import csv
import io
import json
import math
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid

__all__ = ["Client", "SuneungError"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class SuneungError(Exception):
    """A request the server refused (status and its message) or could not be made
    (status None: the server is unreachable or answered something else than JSON)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self):
        return self.message if self.status is None else f"{self.status}: {self.message}"


def _credentials_file():
    config = os.environ.get("XDG_CONFIG_HOME", "")
    if config.startswith("/"):
        return os.path.join(config, "suneung", "credentials")
    return os.path.join(os.path.expanduser("~"), ".config", "suneung", "credentials")


def _token_for(url):
    """$SUNEUNG_TOKEN, else the token `suneung remote add` stored for this URL."""
    token = os.environ.get("SUNEUNG_TOKEN")
    if token:
        return token
    path = _credentials_file()
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise SuneungError(f"{path}: not the credentials file suneung writes ({error})") from None
    for key in (url, url.rstrip("/"), url.rstrip("/") + "/"):
        if isinstance(entries, dict) and isinstance(entries.get(key), str):
            return entries[key]
    return None


def _rows(values):
    """Lists of numbers from a list of lists, a numpy array or a DataFrame."""
    if values is None:
        return None
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    if hasattr(values, "tolist"):
        values = values.tolist()
    return [list(row) for row in values]


def _number(value):
    # repr keeps every digit of a float (and -0.0, nan, inf: the server refuses those).
    if value is None:
        return ""
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        raise SuneungError(f"{value!r} is not a number") from None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is refused, never followed: urllib would send the token to wherever
    the server points (as the CLI, which refuses them too)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects())


class Client:
    """`Client(url, token)`: the team's server, e.g. `http://team-server:8080`.

    The token comes from the argument, else $SUNEUNG_TOKEN, else the credentials file
    that `suneung remote add` writes ($XDG_CONFIG_HOME/suneung/credentials or
    ~/.config/suneung/credentials), by URL.
    """

    def __init__(self, url, token=None, timeout=120):
        if not re.match(r"^https?://[^/?#@]+", url or ""):
            raise SuneungError(f"'{url}' is not a server address like http://team-server:8080")
        self.url = url.rstrip("/")
        self.token = token or _token_for(url)
        self.timeout = timeout

    # --- the calls --------------------------------------------------------------

    def whoami(self):
        """The token's name and role (read or write)."""
        return self._request("GET", "/whoami")

    def register_dataset(self, path):
        """Registers an exam CSV (train, a validation split, test.csv with or without a
        byte-order mark); returns its digest, which `log_predictions` takes."""
        with open(path, "rb") as f:
            data = f.read()
        answer = self._request("POST", "/datasets", body=data, content_type="text/csv")
        return answer["contentSha256"]

    def log_predictions(
        self, name, dataset, ids, answers=None, logits=None, probs=None, tags=None, note=None, subset=False, invalid="refuse"
    ):
        """Stores a prediction set `name` (a new version when its content is new).

        `dataset`: a digest from `register_dataset`, or the exam CSV's path (registered
        first). `ids` with `answers` (1-based) and/or per-choice `logits` or `probs`
        (lists, numpy arrays, one row per id, 4 or 5 values: a 4-choice item's fifth is
        ignored); or `ids` alone as a DataFrame in a prediction file's columns (`id`,
        `answer`, `logit_1`..). Without `answers` each row's answer is its largest value.
        `subset=True` for predictions of part of the dataset (a validation split);
        `invalid="as-wrong"` keeps answers outside the choices as wrong ones.
        Returns the server's answer: `set` (NAME@vN), `created`, `rows`, ...
        """
        if not _DIGEST.match(str(dataset)):
            dataset = self.register_dataset(dataset)
        if logits is not None and probs is not None:
            raise SuneungError("give logits or probs, not both")
        if hasattr(ids, "to_csv") and answers is None and logits is None and probs is None:
            table = ids.to_csv(index=False)
        else:
            table = self._table(list(ids.tolist() if hasattr(ids, "tolist") else ids), answers, logits, probs)
        fields = [("name", name), ("dataset", dataset), ("invalid", invalid), ("subset", "1" if subset else "0")]
        fields += [("tag", tag) for tag in (tags or [])]
        if note is not None:
            fields.append(("note", note))
        body, content_type = _multipart(fields, f"{name}.csv", table.encode("utf-8"))
        return self._request("POST", "/sets", body=body, content_type=content_type)

    def log_score(self, ref, public=None, private=None, note=None):
        """Records a leaderboard score (public, private or both) of a set."""
        if public is None and private is None:
            raise SuneungError("give public= or private= (or both)")
        body = {"public": public, "private": private, "note": note}
        body = {k: float(v) if k != "note" and v is not None else v for k, v in body.items()}
        return self._request("POST", f"/sets/{_segment(ref)}/scores", json_body={k: v for k, v in body.items() if v is not None})

    def sets(self, hidden=False, as_frame=False):
        """Every set's summary (name, version, scores, tags, ...): dicts, or a DataFrame."""
        records = self._request("GET", "/sets", query={"all": "1" if hidden else "0"})
        if as_frame:
            import pandas

            return pandas.DataFrame.from_records(records)
        return records

    def get_predictions(self, ref, as_frame=False):
        """A set's predictions (`NAME` for the latest version, or `NAME@vN`): a dict of
        `columns`, `ids`, `answers` and `values` (each row's per-choice values, None where
        an item has fewer choices; empty rows for a set of answers only), or a DataFrame."""
        text = self._request("GET", f"/sets/{_segment(ref)}/csv", raw=True).decode("utf-8")
        if as_frame:
            import pandas

            return pandas.read_csv(io.StringIO(text))
        reader = csv.reader(io.StringIO(text))
        header = next(reader)
        ids, answers, values = [], [], []
        for row in reader:
            ids.append(row[0])
            answers.append(int(row[1]))
            values.append([float(cell) if cell != "" else None for cell in row[2:]])
        return {"columns": header, "ids": ids, "answers": answers, "values": values}

    # --- helpers ------------------------------------------------------------------

    @staticmethod
    def _table(ids, answers, logits, probs):
        values = _rows(logits if logits is not None else probs)
        answers = None if answers is None else [int(a) if isinstance(a, float) and a.is_integer() else a for a in _flat(answers)]
        if values is None and answers is None:
            raise SuneungError("give answers, logits or probs")
        for what, column in (("answers", answers), ("rows of values", values)):
            if column is not None and len(column) != len(ids):
                raise SuneungError(f"{len(ids)} ids but {len(column)} {what}")
        if values is not None:
            widths = {len(row) for row in values}
            if not widths <= {2, 3, 4, 5}:
                raise SuneungError(f"each row of values has 2 to 5 numbers (one per choice); found rows of {sorted(widths)}")
        prefix = "logit" if logits is not None else "prob"
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["id", "answer"] + ([f"{prefix}_{k}" for k in range(1, 6)] if values is not None else []))
        for index, item in enumerate(ids):
            row = values[index] if values is not None else None
            answer = answers[index] if answers is not None else _argmax(row) + 1
            cells = [] if row is None else [_number(v) for v in row] + [""] * (5 - len(row))
            writer.writerow([item, answer] + cells)
        return out.getvalue()

    def _request(self, method, path, query=None, body=None, json_body=None, content_type=None, raw=False):
        url = f"{self.url}/api/v1{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if json_body is not None:
            body, content_type = json.dumps(json_body, allow_nan=False).encode("utf-8"), "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with _opener.open(request, timeout=self.timeout) as reply:
                data = reply.read()
        except urllib.error.HTTPError as error:
            if 300 <= error.code < 400:
                message = f"{self.url} answered a redirect ({error.code}), which is not followed: give the server's own address"
                raise SuneungError(message, status=error.code) from None
            raise SuneungError(_message(error.read()), status=error.code) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise SuneungError(f"cannot reach {self.url}: {reason}") from None
        if raw:
            return data
        try:
            return json.loads(data)
        except ValueError:
            raise SuneungError(f"{self.url}{path} answered something else than JSON") from None


def _flat(values):
    if hasattr(values, "tolist"):
        values = values.tolist()
    return list(values)


def _argmax(row):
    finite = [(v, -k) for k, v in enumerate(row) if isinstance(v, (int, float)) and not math.isnan(v)]
    if not finite:
        raise SuneungError("a row without a number: give answers, or values for each choice")
    return -max(finite)[1]


def _segment(ref):
    return urllib.parse.quote(str(ref), safe="")


def _message(body):
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")[:300]


def _multipart(fields, filename, data):
    """A multipart/form-data body, as `requests.post(data=..., files=...)` sends one."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode("utf-8"))
        out.write(str(value).encode("utf-8") + b"\r\n")
    safe = filename.replace('"', "%22").replace("\r", "").replace("\n", "")
    out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe}"\r\n'.encode("utf-8"))
    out.write(b"Content-Type: text/csv\r\n\r\n" + data + f"\r\n--{boundary}--\r\n".encode("utf-8"))
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"
