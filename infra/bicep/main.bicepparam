// Parameters for main.bicep. Values that differ per deployment come from environment variables,
// so secrets never land in a file (see docs/deploy.md):
//   GRAPHFUNCTIONS_REGISTRY  name of the Azure Container Registry that holds the image
//   GRAPHFUNCTIONS_IMAGE     image reference, e.g. myregistry.azurecr.io/graphfunctions:1.0
//   GRAPHFUNCTIONS_SECRET    SECRET, the x-secret-key clients send (16 characters or more)
//   HF_TOKEN                 a Hugging Face read token
using 'main.bicep'

param namePrefix = 'graphfn'
param registryName = readEnvironmentVariable('GRAPHFUNCTIONS_REGISTRY')
param containerImage = readEnvironmentVariable('GRAPHFUNCTIONS_IMAGE')
param apiSecret = readEnvironmentVariable('GRAPHFUNCTIONS_SECRET')
param hfToken = readEnvironmentVariable('HF_TOKEN')

// One serverless A100 that stays up. For a dedicated profile use e.g. 'NC24-A100' with
// containerCpu and containerMemory a little below the node size.
param gpuProfileType = 'Consumption-GPU-NC24-A100'
param gpuInstances = 1
param minReplicas = 1
param containerCpu = 24
param containerMemory = '220Gi'

// The model and transcoders of the Neuronpedia gemma-2-2b graphs. To load them from the models
// share instead of the hub, set modelPath (and transcoderSet) to folders under /mnt/models.
param modelId = 'google/gemma-2-2b'
param modelPath = ''
param transcoderSet = 'gemma'
param neuronpediaModelId = 'gemma-2-2b'
param computeDtype = 'bfloat16'
param tokenLimit = 64
param signedUrlAllowedHosts = ''
param steerWaitSeconds = 30
param graphWaitSeconds = 220
param uploadTimeoutSeconds = 300
param jobRetentionHours = 24
param updateInterval = 1000
param lazyEncoders = false
param batchesPerActivity = 8
