"""The OPEA fake: ChatQnA megaservice shapes (GenAIExamples/ChatQnA/chatqna.py) and the
OpenAI-style microservices, the latter judged by the official openai SDK."""

from __future__ import annotations

import ast

import pytest

from ipfs_accelerate.api.testing import FakeOPEAServer, Fault, embedding, reply_text, rerank_score

from .conftest import http, sdk_http

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def srv() -> FakeOPEAServer:
    with FakeOPEAServer() as s:
        yield s


def test_chatqna_streams_by_default_as_python_bytes_reprs(srv: FakeOPEAServer) -> None:
    with http().stream(
        "POST", srv.url + "/v1/chatqna", json={"messages": "What is IPFS?"}, timeout=5
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [x for x in r.iter_lines() if x]
    assert lines[0] == "data: b''" and lines[-1] == "data: [DONE]"
    text = "".join(ast.literal_eval(x.removeprefix("data: ")).decode() for x in lines[:-1])
    assert text == reply_text("What is IPFS?")


def test_chatqna_non_stream(srv: FakeOPEAServer) -> None:
    body = {
        "messages": [{"role": "user", "content": "What is IPFS?"}],
        "stream": False,
        "max_tokens": 4,
    }
    r = http().post(srv.url + "/v1/chatqna", json=body, timeout=5).json()
    assert r["object"] == "chat.completion" and r["model"] == "chatqna"
    assert r["choices"][0]["message"]["content"] == reply_text("What is IPFS?", 4)
    assert r["usage"] == {
        "prompt_tokens": 0,
        "total_tokens": 0,
        "completion_tokens": 0,
    }  # upstream reports none


def test_chatqna_validation_is_fastapi_shaped(srv: FakeOPEAServer) -> None:
    r = http().post(srv.url + "/v1/chatqna", json={"stream": False}, timeout=5)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "messages"]
    srv.inject(Fault.http(500, message="Internal Server Error"))
    assert http().post(srv.url + "/v1/chatqna", json={"messages": "x"}, timeout=5).json() == {
        "detail": "Internal Server Error"
    }


def test_retrieval_and_reranking(srv: FakeOPEAServer) -> None:
    q = "What is content addressing?"
    searched = (
        http()
        .post(
            srv.url + "/v1/retrieval",
            json={"text": q, "embedding": embedding(q), "k": 2},
            timeout=5,
        )
        .json()
    )
    assert searched["initial_query"] == q and len(searched["retrieved_docs"]) == 2
    assert searched["retrieved_docs"][0]["text"].startswith("Content addressing")
    plain = http().post(srv.url + "/v1/retrieval", json={"input": q, "k": 1}, timeout=5).json()
    assert plain["retrieved_docs"][0]["metadata"]["score"] == rerank_score(
        q, plain["retrieved_docs"][0]["text"]
    )
    docs = ["cats sleep", "content addressing uses hashes"]
    rr = (
        http()
        .post(
            srv.url + "/v1/reranking",
            json={"input": q, "retrieved_docs": docs, "top_n": 1},
            timeout=5,
        )
        .json()
    )
    assert rr == {"reranked_docs": [{"text": docs[1], "score": rerank_score(q, docs[1])}]}
    assert http().get(srv.url + "/v1/health_check", timeout=5).status_code == 200


def test_llm_and_embedding_microservices_with_openai_sdk(srv: FakeOPEAServer) -> None:
    openai = pytest.importorskip("openai")
    c = openai.OpenAI(
        base_url=srv.url + "/v1", api_key="unused", max_retries=0, http_client=sdk_http(openai)
    )
    r = c.chat.completions.create(
        model="Intel/neural-chat-7b-v3-3", messages=[{"role": "user", "content": "hi"}]
    )
    assert r.choices[0].message.content == reply_text("hi")
    text = "".join(
        ch.choices[0].delta.content or ""
        for ch in c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert text == reply_text("hi")
    assert c.embeddings.create(
        model="BAAI/bge-base-en-v1.5", input="hi", encoding_format="float"
    ).data[0].embedding == embedding("hi")
    srv.inject(Fault.http(503, message="TGI not ready"))
    with pytest.raises(openai.InternalServerError) as exc:
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.body == {
        "detail": "TGI not ready"
    }  # FastAPI's shape; the SDK keeps it as body
