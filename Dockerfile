# The controller image: controller and monitor are the same image, different args.
#   docker build -t chaosdemo:dev .
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY controller ./controller
COPY crds ./crds
COPY chaosdemo.yaml ./
RUN pip install --no-cache-dir --prefix=/install -c constraints.txt .

FROM python:3.11.11-slim-bookworm
COPY --from=build /install /usr/local
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin chaosdemo
USER 10001:10001
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["chaosdemo"]
CMD ["controller"]
