from upvote.cli import app

app(prog_name="upvote")
