# The dbwrapper service, for docker-compose.yml. Its servers come from the environment.
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md app.conf ./
COPY dbwrapper ./dbwrapper
COPY templates ./templates
RUN pip install --no-cache-dir . && useradd --create-home dbwrapper
USER dbwrapper
EXPOSE 7001
# Inside a container the service must listen beyond loopback; compose publishes it on 127.0.0.1.
CMD ["dbwrapper", "serve", "--host", "0.0.0.0"]
