"""A Qdrant server for the fault suite, where no Qdrant server can be
installed: Qdrant's REST API (the part SupportDesk calls) over
qdrant-client's own local engine, in a process of its own that a test can
stop, freeze and start again like the real server.

    python tests/e2e/qdrant_server.py PORT DATA_FOLDER

It speaks the wire format of the real server (qdrant-client's own models,
in JSON), so the services use their remote client, its timeouts and errors,
exactly as they would against Qdrant.
"""

import sys
from importlib.metadata import version
from typing import Any

import uvicorn
from qdrant_client import AsyncQdrantClient
from qdrant_client.http import models
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def ok(result: Any) -> JSONResponse:
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json", exclude_none=True)
    return JSONResponse({"result": result, "status": "ok", "time": 0})


def app(folder: str) -> Starlette:
    local = AsyncQdrantClient(path=folder)

    async def root(request: Request) -> JSONResponse:
        # The client checks the server's version against its own.
        return JSONResponse({"title": "qdrant - vector search engine", "version": version("qdrant-client")})

    async def collections(request: Request) -> JSONResponse:
        return ok(await local.get_collections())

    async def exists(request: Request) -> JSONResponse:
        return ok({"exists": await local.collection_exists(request.path_params["name"])})

    async def create(request: Request) -> JSONResponse:
        body = models.CreateCollection.model_validate(await request.json())
        return ok(
            await local.create_collection(
                request.path_params["name"], vectors_config=body.vectors, sparse_vectors_config=body.sparse_vectors
            )
        )

    async def info(request: Request) -> JSONResponse:
        return ok(await local.get_collection(request.path_params["name"]))

    async def index(request: Request) -> JSONResponse:
        return ok(models.UpdateResult(operation_id=0, status=models.UpdateStatus.COMPLETED))

    async def upsert(request: Request) -> JSONResponse:
        body = models.PointsList.model_validate(await request.json())
        return ok(await local.upsert(request.path_params["name"], points=body.points))

    async def delete(request: Request) -> JSONResponse:
        body = await request.json()
        selector: models.PointsSelector = (
            models.FilterSelector.model_validate(body) if "filter" in body else models.PointIdsList.model_validate(body)
        )
        return ok(await local.delete(request.path_params["name"], points_selector=selector))

    async def count(request: Request) -> JSONResponse:
        body = models.CountRequest.model_validate(await request.json())
        return ok(await local.count(request.path_params["name"], count_filter=body.filter, exact=bool(body.exact)))

    async def search(name: str, body: models.QueryRequest) -> models.QueryResponse:
        return await local.query_points(
            name,
            query=body.query,  # type: ignore[arg-type]
            using=body.using,
            query_filter=body.filter,
            limit=body.limit or 10,
            score_threshold=body.score_threshold,
            with_payload=body.with_payload if body.with_payload is not None else True,
            with_vectors=body.with_vector if body.with_vector is not None else False,
        )

    async def query(request: Request) -> JSONResponse:
        return ok(await search(request.path_params["name"], models.QueryRequest.model_validate(await request.json())))

    async def query_batch(request: Request) -> JSONResponse:
        body = models.QueryRequestBatch.model_validate(await request.json())
        found = [await search(request.path_params["name"], one) for one in body.searches]
        return ok([f.model_dump(mode="json", exclude_none=True) for f in found])

    return Starlette(
        routes=[
            Route("/", root),
            Route("/collections", collections),
            Route("/collections/{name}/exists", exists),
            Route("/collections/{name}", create, methods=["PUT"]),
            Route("/collections/{name}", info, methods=["GET"]),
            Route("/collections/{name}/index", index, methods=["PUT"]),
            Route("/collections/{name}/points", upsert, methods=["PUT"]),
            Route("/collections/{name}/points/delete", delete, methods=["POST"]),
            Route("/collections/{name}/points/count", count, methods=["POST"]),
            Route("/collections/{name}/points/query", query, methods=["POST"]),
            Route("/collections/{name}/points/query/batch", query_batch, methods=["POST"]),
        ]
    )


if __name__ == "__main__":
    port, folder = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(app(folder), host="127.0.0.1", port=port, log_level="warning")
