"""The HTTP API of the embedding jobs (`/v1/embeddings`): a FastAPI app of its own
(`app.create_app`), which needs no upvote model."""
