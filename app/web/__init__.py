"""The web layer: the FastAPI routers, the page views and template contexts, and their helpers.

    api.py           APIRouter /api (+ /healthz): JSON, or the breakdown partial for HTMX
    pages.py         the HTML pages (not in the schema) and their page-side wiring (`install`)
    views.py         what the pages show beside the numbers: the card's context, the breakdown's, the
                     VRAM table, the chart, the format options
    accuracy.py      the /accuracy page's reports: measurements, traces, the llama.cpp grid, field logs
    logs_page.py     reading a log from a request body; the /logs page's context
    calc_form.py     the calculator's runtime controls, generated from VramRequest's fields
    charts.py        server-rendered SVG charts and the context slider
    rendering.py     the one Jinja2Templates, its filters, is_htmx() and the JSON-or-partial answer
    urls.py          page and API URLs of a request state
    deps.py          FastAPI dependencies (the catalog)
    handlers.py      exception handlers: estimator and Hub errors as HTTP answers
    trace_option.py  `trace=true`: the only door to app.measure, imported when asked (torch is optional)

`app.main` creates the app from these; nothing else in app/ imports this package.
"""
