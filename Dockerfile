# syntax=docker/dockerfile:1
# GPU image of GraphFunctions for Azure Container Apps (kind functionapp on a GPU workload profile).
# Build from the repository root, remotely (no local Docker needed) or locally:
#   az acr build --registry <registry> --image graphfunctions:<tag> .
#   docker build -t <registry>.azurecr.io/graphfunctions:<tag> .
#
# Four stages:
#   libtorch  the CUDA build of libtorch that TorchSharp binds to (its natives only)
#   viewer    the viewer's scripts from npm (d3, @cfworker/json-schema)
#   build     dotnet publish with TorchSharpFlavor=cuda: the TorchSharp bindings without natives
#   runtime   CUDA base (Ubuntu 24.04) + ASP.NET Core 10 runtime + the Azure Functions host

# TorchSharp 0.107 binds libtorch 2.10.0; its CUDA packages are built against CUDA 12.8. The
# "with-deps" archive bundles the CUDA libraries libtorch needs (cuBLAS, cuDNN, ...), so the runtime
# base only has to bring the driver hook-up. Change both lines together.
ARG LIBTORCH_URL=https://download.pytorch.org/libtorch/cu128/libtorch-shared-with-deps-2.10.0%2Bcu128.zip
ARG LIBTORCH_SHA256=429aa9fead3cf3d557e7c310442a1fae3879cdc14a469ff452043b39b61666a9

# ---- libtorch: download, verify, keep lib/*.so* only -------------------------------------------
FROM ubuntu:24.04 AS libtorch
ARG LIBTORCH_URL
ARG LIBTORCH_SHA256
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl unzip \
 && curl -fsSL --retry 3 -o /tmp/libtorch.zip "$LIBTORCH_URL" \
 && echo "$LIBTORCH_SHA256  /tmp/libtorch.zip" | sha256sum -c - \
 && unzip -q /tmp/libtorch.zip 'libtorch/lib/*' -d /opt \
 && rm -f /tmp/libtorch.zip /opt/libtorch/lib/*.a

# ---- viewer: the viewer's scripts from npm (viewer/package-lock.json), copied beside the app by the build ----
FROM node:20-bookworm-slim AS viewer
WORKDIR /src/viewer
COPY viewer/package.json viewer/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# ---- build: publish the isolated worker with the CUDA flavour of TorchSharp ---------------------
FROM mcr.microsoft.com/dotnet/sdk:10.0-noble AS build
WORKDIR /src
# Restore first, so the package layer is reused while only sources change.
COPY Directory.Build.props Directory.Build.targets Directory.Packages.props .editorconfig ./
COPY Attribution/Attribution.csproj Attribution/
COPY Attribution.Serving/Attribution.Serving.csproj Attribution.Serving/
COPY GraphFunctions.Service/GraphFunctions.Service.csproj GraphFunctions.Service/
COPY GraphFunctions/GraphFunctions.csproj GraphFunctions/
RUN dotnet restore GraphFunctions/GraphFunctions.csproj -p:TorchSharpFlavor=cuda
COPY . .
COPY --from=viewer /src/viewer/node_modules viewer/node_modules
RUN dotnet publish GraphFunctions/GraphFunctions.csproj -c Release -p:TorchSharpFlavor=cuda -o /home/site/wwwroot

# ---- runtime -----------------------------------------------------------------------------------
# The CUDA base image sets NVIDIA_VISIBLE_DEVICES / NVIDIA_DRIVER_CAPABILITIES, which make the
# GPU host mount the driver into the container. Ubuntu 24.04's libstdc++ has GLIBCXX_3.4.32, so
# TorchSharp's native bridge loads unpatched (see Directory.Build.targets).
# libc6-dev as in the official Functions images (it provides the unversioned libdl.so that native
# gRPC loading asks for); libgomp1 is the OpenMP runtime libtorch_cpu links against.
# libjemalloc2: the worker re-executes itself with it (NativeAllocator; docs/performance.md, "Memory").
FROM nvidia/cuda:12.8.1-base-ubuntu24.04 AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libicu74 libssl3t64 tzdata libgomp1 libc6-dev libjemalloc2 \
 && rm -rf /var/lib/apt/lists/*

# .NET 10 runs the worker (GraphFunctions.dll); the Functions host is self-contained (.NET 8) and
# is taken from the official .NET 10 isolated image, where it lives in /azure-functions-host.
COPY --from=mcr.microsoft.com/dotnet/aspnet:10.0-noble /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
COPY --from=mcr.microsoft.com/azure-functions/dotnet-isolated:4-dotnet-isolated10.0 /azure-functions-host /azure-functions-host

COPY --from=libtorch /opt/libtorch/lib /opt/libtorch/lib
COPY --from=build /home/site/wwwroot /home/site/wwwroot

# The host settings of the official image. LD_LIBRARY_PATH (prepended to the CUDA base's own) lets
# TorchSharp find libtorch_cuda and lets libLibTorchSharp.so resolve libtorch.so / libc10.so.
# App settings (DEVICE, MODEL_ID, ...) come from the Container App, not from the image.
# MALLOC_ARENA_MAX=1: activities run on any pool thread, and glibc's per-thread arenas each keep
# fragments of the batches' large temporaries (docs/performance.md, "Memory").
ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    HOME=/home \
    FUNCTIONS_WORKER_RUNTIME=dotnet-isolated \
    AzureWebJobsFeatureFlags=EnableWorkerIndexing \
    ASPNETCORE_CONTENTROOT=/azure-functions-host \
    ASPNETCORE_URLS=http://+:80 \
    DOTNET_USE_POLLING_FILE_WATCHER=true \
    MALLOC_ARENA_MAX=1 \
    LD_LIBRARY_PATH=/opt/libtorch/lib:${LD_LIBRARY_PATH}
EXPOSE 80
CMD ["/azure-functions-host/Microsoft.Azure.WebJobs.Script.WebHost"]
