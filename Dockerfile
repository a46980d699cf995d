# The controller image: controller and monitor are the same image, different args.
#   docker build -t chaosdemo:dev .
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY controller ./controller
RUN pip install --no-cache-dir --prefix=/install -c constraints.txt . \
 # Only what runs in a cluster: the emulator and the local sandbox are for workstations and tests.
 && rm -rf /install/lib/python3.11/site-packages/controller/emulator \
           /install/lib/python3.11/site-packages/controller/sandbox

FROM python:3.11.11-slim-bookworm
COPY --from=build /install /usr/local
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin chaosdemo
USER 10001:10001
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["chaosdemo"]
CMD ["controller"]
