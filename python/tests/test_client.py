"""The package against a real `suneung serve` (conftest.py): every call, the values read
back equal to those logged, and refusals carrying the server's own message."""
import csv
import math
import random
import urllib.parse
import urllib.request

import pytest

from suneung import Client, SuneungError


def exam_ids(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [row["id"] for row in csv.DictReader(f)]


def choice_counts(path):
    import ast

    with open(path, encoding="utf-8-sig", newline="") as f:
        return [len(ast.literal_eval(row["problems"])["choices"]) for row in csv.DictReader(f)]


def random_logits(counts, seed):
    generator = random.Random(seed)
    return [[generator.uniform(-8, 8) for _ in range(n)] for n in counts]


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, token=server.write_token)


def test_whoami_names_the_token(client):
    assert client.whoami() == {"name": "trainer", "role": "write"}


def test_datasets_register_by_upload_with_their_digest(client, test_csv, tmp_path):
    digest = client.register_dataset(test_csv)
    assert len(digest) == 64
    # The same items saved with a byte-order mark and CRLF are the same dataset.
    copy = tmp_path / "test-bom.csv"
    copy.write_bytes(b"\xef\xbb\xbf" + test_csv.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    assert client.register_dataset(copy) == digest


def test_logits_read_back_as_logged(client, test_csv):
    ids, counts = exam_ids(test_csv), choice_counts(test_csv)
    logits = random_logits(counts, seed=1)
    logits[0][0] = -0.0
    logits[1][0] = 1e-300
    answer = client.log_predictions("py-logits", str(test_csv), ids, logits=logits, tags=["python", "lora-r16"], note="a note + 100% sure")
    assert answer["set"] == "py-logits@v1" and answer["created"] and answer["rows"] == len(ids)
    back = client.get_predictions("py-logits@v1")
    assert back["ids"] == ids
    assert back["answers"] == [max(range(len(row)), key=lambda k: (row[k], -k)) + 1 for row in logits]
    for logged, stored in zip(logits, back["values"]):
        assert stored[: len(logged)] == logged
        assert all(value is None for value in stored[len(logged):])
    summary = next(s for s in client.sets() if s["name"] == "py-logits")
    assert summary["tags"] == ["lora-r16", "python"]
    # The same content again is no new version.
    again = client.log_predictions("py-logits", str(test_csv), ids, logits=logits)
    assert again["set"] == "py-logits@v1" and not again["created"]


def test_numpy_arrays_and_probabilities(client, test_csv):
    numpy = pytest.importorskip("numpy", reason="numpy is not installed: the list form is tested instead")
    ids, counts = exam_ids(test_csv), choice_counts(test_csv)
    probs = numpy.full((len(ids), 5), numpy.nan)
    generator = numpy.random.default_rng(7)
    for row, n in enumerate(counts):
        probs[row, :n] = generator.dirichlet(numpy.ones(n))
    answer = client.log_predictions("py-probs", client.register_dataset(test_csv), numpy.array(ids), probs=probs)
    back = client.get_predictions(answer["set"])
    for row, n in enumerate(counts):
        assert back["values"][row][:n] == probs[row, :n].tolist()


def test_scores_are_recorded(client, test_csv):
    ids = exam_ids(test_csv)
    client.log_predictions("py-scored", str(test_csv), ids, answers=[1] * len(ids))
    client.log_score("py-scored", public=0.8123, private=0.7988)
    summary = next(s for s in client.sets() if s["name"] == "py-scored")
    assert summary["public"] == 0.8123 and summary["private"] == 0.7988


def test_a_subset_of_labelled_items(client, train_csv):
    ids = exam_ids(train_csv)[:50]
    answer = client.log_predictions("py-validation", str(train_csv), ids, answers=[2] * 50, subset=True)
    assert answer["rows"] == 50
    assert next(s for s in client.sets() if s["name"] == "py-validation")["subset"] is True


def test_refusals_carry_the_servers_message(server, client, test_csv):
    ids, counts = exam_ids(test_csv), choice_counts(test_csv)
    digest = client.register_dataset(test_csv)
    with pytest.raises(SuneungError) as refused:
        Client(server.url, token="snt_not-a-token").sets()
    assert refused.value.status == 401 and "token" in refused.value.message
    with pytest.raises(SuneungError) as refused:
        Client(server.url, token=server.read_token).log_predictions("py-read", digest, ids, answers=[1] * len(ids))
    assert refused.value.status == 403
    with pytest.raises(SuneungError) as refused:
        client.log_predictions("py-unknown", "0" * 64, ids, answers=[1] * len(ids))
    assert "0000000000" in refused.value.message
    logits = random_logits(counts, seed=3)
    logits[5][1] = math.nan
    with pytest.raises(SuneungError) as refused:
        client.log_predictions("py-nan", digest, ids, logits=logits)
    assert ids[5] in refused.value.message, refused.value.message
    with pytest.raises(SuneungError) as refused:
        client.log_predictions("py-short", digest, ids[:-1], answers=[1] * (len(ids) - 1))
    assert ids[-1] in refused.value.message, refused.value.message
    with pytest.raises(SuneungError) as refused:
        client.log_predictions("py-wide", digest, ids, logits=[[0.0] * 6 for _ in ids])
    assert "2 to 5 numbers" in refused.value.message
    with pytest.raises(SuneungError) as refused:
        client.log_predictions("../py-escape", digest, ids, answers=[1] * len(ids))
    assert refused.value.status == 422 and "must be letters, digits" in refused.value.message
    assert not any(s["name"].startswith("py-nan") or s["name"].startswith("py-short") for s in client.sets(hidden=True))


def test_query_values_arrive_as_python_and_browsers_send_them(server, client, test_csv):
    ids = exam_ids(test_csv)
    client.log_predictions("py-query", str(test_csv), ids, answers=[3] * len(ids))
    # A name with a space (refused by the name rule) would not prove anything; a tag
    # would: ask for the diff of the same set, with the ref's "@" encoded both ways.
    for encoded in ("a=py-query%40v1&b=py-query", "a=py-query@v1&b=py%2Dquery"):
        request = urllib.request.Request(
            f"{server.url}/api/v1/diff?{encoded}", headers={"Authorization": f"Bearer {server.read_token}"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert reply.status == 200
    # `+` is a space in a form-encoded query: a note with spaces, as requests sends it.
    digest = client.register_dataset(test_csv)
    body = "id,answer\n" + "".join(f"{i},4\n" for i in ids)
    query = urllib.parse.urlencode({"name": "py-plus", "dataset": digest, "note": "three spaced words + 50%"})
    assert "+" in query
    request = urllib.request.Request(
        f"{server.url}/api/v1/sets?{query}", data=body.encode(), method="POST",
        headers={"Authorization": f"Bearer {server.write_token}", "Content-Type": "text/csv"})
    with urllib.request.urlopen(request, timeout=30):
        pass
    shown = client._request("GET", "/sets/py-plus")
    assert shown["note"] == "three spaced words + 50%", shown


def test_an_unreachable_server_is_said(server):
    with pytest.raises(SuneungError) as refused:
        Client("http://127.0.0.1:9", token="x", timeout=5).sets()
    assert refused.value.status is None and "cannot reach" in refused.value.message


def test_the_openapi_document_is_valid_and_names_the_clients_calls(server):
    validator = pytest.importorskip("openapi_spec_validator", reason="openapi-spec-validator is not installed")
    import json

    with urllib.request.urlopen(f"{server.url}/api/v1/openapi.json", timeout=30) as reply:
        document = json.load(reply)
    validator.validate(document)
    operations = {(method, path) for path, methods in document["paths"].items() for method in methods}
    for call in [("get", "/api/v1/whoami"), ("post", "/api/v1/datasets"), ("post", "/api/v1/sets"), ("get", "/api/v1/sets"),
                 ("post", "/api/v1/sets/{ref}/scores"), ("get", "/api/v1/sets/{ref}/csv")]:
        assert call in operations, call
    assert "multipart/form-data" in document["paths"]["/api/v1/sets"]["post"]["requestBody"]["content"]


def test_a_redirect_is_refused_and_the_token_stays_here(tmp_path):
    import http.server
    import threading

    heard = []

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            heard.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    class Redirecting(Elsewhere):
        def do_GET(self):
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{other.server_address[1]}/api/v1/sets")
            self.end_headers()

    other = http.server.HTTPServer(("127.0.0.1", 0), Elsewhere)
    hostile = http.server.HTTPServer(("127.0.0.1", 0), Redirecting)
    for server in (other, hostile):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(SuneungError) as refused:
            Client(f"http://127.0.0.1:{hostile.server_address[1]}", token="snt_secret").sets()
        assert refused.value.status == 307 and "not followed" in refused.value.message
        assert heard == []
    finally:
        other.shutdown()
        hostile.shutdown()


def test_values_that_are_not_numbers_are_said(client, test_csv):
    ids = exam_ids(test_csv)
    with pytest.raises(SuneungError) as refused:
        client.log_predictions("py-text", str(test_csv), ids, logits=[["high", 0, 0, 0]] * len(ids))
    assert "'high' is not a number" in refused.value.message
