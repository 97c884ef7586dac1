"""The artifact store as an fsspec URL (UPVOTE_JOBS_ARTIFACTS_URL, jobs/artifacts.py): real
`upvote jobs api` and `upvote jobs worker` processes on a real PostgreSQL, each with its OWN data
folder, sharing nothing but the database and a file:// store outside all of them. An uploaded
corpus and one by URL train; vectors (text and binary), /similar and evaluation.json are served
from the store; DELETE empties the job's prefix; a worker SIGKILLed mid-training has its job
resumed from the store's checkpoint by a worker with another data folder. (S3 itself cannot be
reached from here: file:// goes through the same fsspec calls.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("procrastinate", reason="procrastinate not installed: pip install '.[jobs]'")
pytest.importorskip("fsspec", reason="fsspec not installed: pip install '.[jobs]'")
gensim_models = pytest.importorskip("gensim.models")

from upvote.jobs.queue import apply_schemas, make_app  # noqa: E402
from upvote.jobs.store import connect  # noqa: E402
from upvote.jobs.tokens import create_token  # noqa: E402
from upvote.serve.deploy import free_port  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from pgserver import PostgresServer, find_bin_dir  # noqa: E402
from test_jobs_api import JOBS, SRC, corpus_bytes, stop_all, wait_healthy, word  # noqa: E402

FINISHED = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def dsn():
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: install postgresql-15")
    server = PostgresServer.start()
    try:
        dsn = server.clone("jobsstore")
        apply_schemas(make_app(dsn), dsn)
        yield dsn
    finally:
        server.stop()


class Service:
    """The API and the workers, each process with its own UPVOTE_DATA_DIR; the store apart."""

    def __init__(self, dsn: str, root: Path) -> None:
        self.root, self.store = root, root / "store"
        self.store.mkdir()
        self.env = os.environ | {
            "UPVOTE_JOBS_DATABASE_URL": dsn, "UPVOTE_TRACKING": "0", "PYTHONPATH": str(SRC),
            "UPVOTE_JOBS_ARTIFACTS_URL": self.store.as_uri(),
            "UPVOTE_JOBS_ALLOW_HOSTS": "127.0.0.1",
        }  # fmt: skip
        self.env.pop("UPVOTE_JOBS_ARTIFACTS_DIR", None)
        self.processes: list[subprocess.Popen] = []
        self.url = f"http://127.0.0.1:{free_port()}"
        self.api_data = root / "api-data"
        self.start("api", "-m", "upvote", "jobs", "api", "--port", self.url.rsplit(":", 1)[1])
        wait_healthy(self.url, root / "api.log")

    def start(self, name: str, *args: str) -> subprocess.Popen:
        data = self.root / f"{name}-data"
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115
        env = self.env | {"UPVOTE_DATA_DIR": str(data)}
        process = subprocess.Popen([sys.executable, *args], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        self.processes.append(process)
        return process

    def worker(self, name: str) -> subprocess.Popen:
        return self.start(name, "-m", "upvote", "jobs", "worker", "--heartbeat", "0.5",
                          "--stalled-after", "3")  # fmt: skip

    def logs(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in self.root.glob("*.log"))

    def stop(self) -> None:
        stop_all(self.processes)


@pytest.fixture
def service(dsn, tmp_path):
    running = Service(dsn, tmp_path)
    yield running
    running.stop()


def client_of(service: Service, dsn: str, name: str) -> httpx.Client:
    with connect(dsn) as conn:
        token = create_token(conn, name)
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=service.url, headers=headers, timeout=30)


def wait(client: httpx.Client, service: Service, ids, until, timeout: float = 90.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        jobs = [client.get(f"{JOBS}/{i}").json() for i in ids]
        if all(until(job) for job in jobs):
            return jobs
        assert time.monotonic() < deadline, (jobs, service.logs())
        time.sleep(0.2)


def job_files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_api_and_workers_meet_only_through_the_store(service, corpus_server, dsn, tmp_path):
    site, site_url = corpus_server
    (site / "corpus.txt").write_bytes(corpus_bytes(60_000, seed=5))
    service.worker("worker0")
    client = client_of(service, dsn, "nina")
    options = '{"dim": 16, "epochs": 2, "evaluation": ["wordsim353"]}'
    uploaded = client.post(JOBS, files={"file": ("c.txt", corpus_bytes(60_000, 6))},
                           data={"options": options})  # fmt: skip
    by_url = client.post(JOBS, json={"url": f"{site_url}/corpus.txt", "options": {"dim": 16}})
    assert [r.status_code for r in (uploaded, by_url)] == [202, 202], uploaded.text
    ids = [r.json()["id"] for r in (uploaded, by_url)]
    jobs = wait(client, service, ids, lambda job: job["state"] in FINISHED)
    assert [job["state"] for job in jobs] == ["succeeded", "succeeded"], jobs

    for job_id in ids:
        # the results are in the store; the worker's scratch folder is gone, the API has none
        files = job_files(service.store / str(job_id))
        assert {"vectors.txt", "params.json", "checkpoint.npz"} <= files, files
        assert not any(name.startswith("upload/") for name in files), files  # job over
        assert not (service.root / "worker0-data" / "jobs" / str(job_id)).exists()
        for fmt, binary in (("txt", False), ("bin", True)):
            response = client.get(f"{JOBS}/{job_id}/vectors?format={fmt}")
            assert response.status_code == 200, response.text
            path = tmp_path / f"{job_id}.{fmt}"
            path.write_bytes(response.content)
            vectors = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
            assert len(vectors) == 20 * 26 and vectors.vector_size == 16
        assert (service.store / str(job_id) / "vectors.bin").is_file()  # converted once, kept
        assert response.content == (service.store / str(job_id) / "vectors.bin").read_bytes()
        similar = client.get(f"{JOBS}/{job_id}/similar", params={"word": word(3, 1), "topn": 5})
        hits = similar.json()["similar"]
        assert len(hits) == 5 and sum(hit["word"].startswith("td") for hit in hits) >= 3, hits
    assert not (service.api_data / "jobs").exists()  # the API wrote nothing of its own

    evaluation = client.get(f"{JOBS}/{ids[0]}/evaluation")
    assert evaluation.status_code == 200
    stored = (service.store / str(ids[0]) / "evaluation.json").read_text()
    assert evaluation.json() == json.loads(stored)
    assert set(evaluation.json()) == {"wordsim353"}
    assert client.get(f"{JOBS}/{ids[1]}/evaluation").status_code == 404  # none asked for

    assert client.delete(f"{JOBS}/{ids[0]}").status_code == 204
    assert not (service.store / str(ids[0])).exists()
    assert client.get(f"{JOBS}/{ids[0]}/vectors").status_code == 404
    assert (service.store / str(ids[1]) / "vectors.txt").is_file()  # the other job's stay


def test_a_killed_workers_job_resumes_from_the_store_on_another_machine(service, dsn):
    client = client_of(service, dsn, "otto")
    epochs = 40  # ~16M words: well over 8 s, so it is seen training and killed mid-way
    options = f'{{"dim": 64, "epochs": {epochs}, "sample": 0}}'
    created = client.post(JOBS, files={"file": ("long.txt", corpus_bytes(400_000, 7))},
                          data={"options": options})  # fmt: skip
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    doomed = service.worker("doomed")
    job = wait(client, service, [job_id], lambda j: j["state"] == "training"
               and (j["progress"].get("fraction") or 0) > 1.5 / epochs)[0]  # fmt: skip
    assert (service.store / str(job_id) / "checkpoint.npz").is_file()  # pushed after epoch 1
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    killed_at = client.get(f"{JOBS}/{job_id}").json()["progress"]["fraction"]
    assert killed_at < 1.0, job

    rescuer = service.worker("rescuer")  # another data folder: no scratch of the first attempt
    job = wait(client, service, [job_id], lambda j: j["state"] in FINISHED, timeout=180)[0]
    assert job["state"] == "succeeded", (job, service.logs())
    with connect(dsn) as conn:
        row = conn.execute("SELECT * FROM upvote_jobs WHERE id = %s", (job_id,)).fetchone()
    assert row["attempts"] == 2 and row["worker"].endswith(f":{rescuer.pid}")
    assert job["progress"]["resumed_from_epoch"] >= 1
    assert not (service.root / "rescuer-data" / "jobs" / str(job_id)).exists()
    response = client.get(f"{JOBS}/{job_id}/vectors")
    assert response.status_code == 200
    assert response.content.split(b"\n", 1)[0] == b"520 64"

    # the killed worker's scratch folder stayed behind; a worker started later on its data
    # folder finds the job over and removes it
    leftover = service.root / "doomed-data" / "jobs" / str(job_id)
    assert (leftover / "checkpoint.npz").is_file()
    service.worker("doomed")
    deadline = time.monotonic() + 60
    while leftover.exists():
        assert time.monotonic() < deadline, service.logs()
        time.sleep(0.2)


@pytest.mark.parametrize("command", [["worker"], ["api", "--port", "1"]])
def test_a_store_url_of_an_unknown_protocol_is_a_one_line_error(dsn, tmp_path, command):
    env = os.environ | {
        "UPVOTE_JOBS_DATABASE_URL": dsn, "UPVOTE_DATA_DIR": str(tmp_path), "PYTHONPATH": str(SRC),
        "UPVOTE_JOBS_ARTIFACTS_URL": "nosuchfs://user:hunter2@bucket/jobs",
    }  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "upvote", "jobs", *command], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "UPVOTE_JOBS_ARTIFACTS_URL" in done.stderr and "nosuchfs" in done.stderr
    assert done.stderr.count("\n") == 1 and "hunter2" not in done.stderr, done.stderr


def test_an_attempt_ignores_a_stale_scratch_folder(service, dsn):
    """A scratch folder left by an earlier attempt on this machine is not trusted: the store
    is. Here it holds a checkpoint that is garbage; the job trains from the store's state."""
    client = client_of(service, dsn, "ida")
    created = client.post(JOBS, files={"file": ("c.txt", corpus_bytes(60_000, 8))},
                          data={"options": '{"dim": 16, "epochs": 2}'})  # fmt: skip
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    stale = service.root / "late-data" / "jobs" / str(job_id)
    stale.mkdir(parents=True)
    (stale / "checkpoint.npz").write_bytes(b"not a checkpoint")
    service.worker("late")
    job = wait(client, service, [job_id], lambda j: j["state"] in FINISHED)[0]
    assert job["state"] == "succeeded", (job, service.logs())
    assert job["progress"]["resumed_from_epoch"] == 0
    assert not stale.exists()
