FROM python:3.11-slim
# Install the project from its source, then run it from an empty folder: the app finds its catalog,
# templates and static files inside the installed package (tests/test_dockerfile.py does the same).
COPY pyproject.toml setup.py README.md /src/
COPY app /src/app
COPY templates /src/templates
COPY static /src/static
COPY model_specs /src/model_specs
RUN pip install --no-cache-dir /src && rm -rf /src
WORKDIR /srv
EXPOSE 8000
CMD ["python", "-m", "app.main", "--host", "0.0.0.0", "--port", "8000"]
