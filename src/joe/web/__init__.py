"""Joe's dashboard and control API (FastAPI, server-rendered pages, Plotly served locally).

`create_app(rt, token)` builds the app; `joe web` (`joe.cli.web_cmd`) serves it with uvicorn on
127.0.0.1 by default. Pages and ``/api/`` read what `joe status` reads; the controls call the same
functions as `joe kill` / `joe resume` (`joe.safety.operator`)."""
