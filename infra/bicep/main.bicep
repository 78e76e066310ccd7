// GraphFunctions on Azure: the Functions app on GPU-backed Azure Container Apps, with its storage,
// secrets, identity and monitoring. Deploy into an existing resource group:
//   az deployment group create --resource-group <rg> --parameters infra/bicep/main.bicepparam
// See docs/deploy.md.

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Where and what
// ---------------------------------------------------------------------------------------------

@description('Azure region of every resource. It must offer the chosen GPU profile type.')
param location string = resourceGroup().location

@description('Short lowercase prefix for resource names (letters and digits).')
@minLength(2)
@maxLength(10)
param namePrefix string = 'graphfn'

@description('Image to run, e.g. myregistry.azurecr.io/graphfunctions:1.0 (built from the repository Dockerfile).')
param containerImage string

@description('Name of the existing Azure Container Registry that holds the image.')
param registryName string

@description('Resource group of that registry; defaults to this one.')
param registryResourceGroupName string = resourceGroup().name

// ---------------------------------------------------------------------------------------------
// GPU capacity
// ---------------------------------------------------------------------------------------------

@description('GPU workload profile type: serverless (Consumption-GPU-*, billed per second while replicas run) or dedicated (NC*-A100, billed per node).')
@allowed([
  'Consumption-GPU-NC24-A100'
  'Consumption-GPU-NC8as-T4'
  'NC24-A100'
  'NC48-A100'
  'NC96-A100'
])
param gpuProfileType string = 'Consumption-GPU-NC24-A100'

@description('GPU instances: the most replicas (one GPU each) and, for dedicated profiles, the most nodes.')
@minValue(1)
param gpuInstances int = 1

@description('Replicas that stay up. The Durable Azure Storage backend needs at least one: the platform does not scale it from zero.')
@minValue(1)
param minReplicas int = 1

@description('vCPUs of one replica. Serverless A100: up to 24; serverless T4: up to 8; dedicated: leave room for the node\'s system reserve.')
@minValue(1)
param containerCpu int = 24

@description('Memory of one replica. Serverless A100: up to 220Gi; serverless T4: up to 56Gi.')
param containerMemory string = '220Gi'

// ---------------------------------------------------------------------------------------------
// Secrets (stored in Key Vault, surfaced to the app as Key Vault references)
// ---------------------------------------------------------------------------------------------

@description('SECRET: the value every request must carry in the x-secret-key header.')
@secure()
@minLength(16)
param apiSecret string

@description('HF_TOKEN: a Hugging Face read token (gated models such as Gemma need one).')
@secure()
@minLength(1)
param hfToken string

// ---------------------------------------------------------------------------------------------
// Model, transcoders and service behaviour (plain app settings)
// ---------------------------------------------------------------------------------------------

@description('MODEL_ID: the model id clients send as model_id (a Hugging Face repository id).')
param modelId string = 'google/gemma-2-2b'

@description('MODEL_PATH: a folder with config.json, tokenizer and safetensors, e.g. /mnt/models/gemma-2-2b on the models share; empty downloads MODEL_ID from the hub.')
param modelPath string = ''

@description('TRANSCODER_SET: the transcoder set to attach (a name, hub repository or folder on the models share).')
param transcoderSet string = 'gemma'

@description('NEURONPEDIA_MODEL_ID: the Neuronpedia id written into graph metadata.')
param neuronpediaModelId string = 'gemma-2-2b'

@description('HF_ENDPOINT: the Hugging Face hub (or a mirror) to download from.')
param hfEndpoint string = 'https://huggingface.co'

@description('COMPUTE_DTYPE: the dtype of model and transcoder weights on the GPU.')
@allowed([
  'bfloat16'
  'float16'
  'float32'
])
param computeDtype string = 'bfloat16'

@description('TOKEN_LIMIT: the longest prompt accepted, in tokens (without BOS).')
@minValue(1)
param tokenLimit int = 64

@description('MEMORY_LIMIT_GB: graphs whose estimated peak memory is above this are refused before they start; empty: the GPU\'s memory as its driver reports it.')
param memoryLimitGb string = ''

@description('SIGNED_URL_ALLOWED_HOSTS: hosts that signed_url uploads may go to (comma separated); empty allows none.')
param signedUrlAllowedHosts string = ''

@description('STEER_WAIT_SECONDS: how long a steer request waits for a busy GPU before answering 503.')
@minValue(0)
param steerWaitSeconds int = 30

@description('GRAPH_WAIT_SECONDS: how long /generate-graph waits for its job before answering 202 (stay under the 240 s ingress timeout).')
@minValue(0)
@maxValue(235)
param graphWaitSeconds int = 220

@description('UPLOAD_TIMEOUT_SECONDS: the most one graph delivery (all upload attempts) may take before its job fails.')
@minValue(1)
param uploadTimeoutSeconds int = 300

@description('JOB_RETENTION_HOURS: how long finished graph jobs and their workspace files are kept.')
@minValue(1)
param jobRetentionHours int = 24

@description('UPDATE_INTERVAL: batches between feature re-rankings (the Neuronpedia server ranks once: 1000).')
@minValue(1)
param updateInterval int = 1000

@description('BATCHES_PER_ACTIVITY: backward-pass batches per feature-rows activity (fewer, longer activities amortise Durable dispatch latency; 1 = one activity per batch).')
@minValue(1)
param batchesPerActivity int = 8

@description('LAZY_ENCODERS: stream encoder matrices from the model share at every use instead of holding them (saves memory, costs time).')
param lazyEncoders bool = false

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

// Storage and Key Vault names are global: a suffix derived from the group makes them unique.
var prefix = toLower(namePrefix)
var suffix = uniqueString(subscription().id, resourceGroup().id, prefix)
var names = {
  identity: 'id-${prefix}'
  logAnalytics: 'log-${prefix}'
  appInsights: 'appi-${prefix}'
  storage: take('st${prefix}${suffix}', 24)
  keyVault: take('kv-${prefix}-${suffix}', 24)
  environment: 'cae-${prefix}'
  app: 'ca-${prefix}'
}
var gpuProfileName = 'gpu'

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    location: location
    identityName: names.identity
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    storageAccountName: names.storage
    principalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyVault'
  params: {
    location: location
    keyVaultName: names.keyVault
    principalId: identity.outputs.principalId
    apiSecret: apiSecret
    hfToken: hfToken
    storageAccountName: storage.outputs.name
  }
}

module registryAccess 'modules/registry-access.bicep' = {
  name: 'registryAccess'
  scope: resourceGroup(registryResourceGroupName)
  params: {
    registryName: registryName
    principalId: identity.outputs.principalId
  }
}

module environment 'modules/environment.bicep' = {
  name: 'environment'
  params: {
    location: location
    environmentName: names.environment
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    identityId: identity.outputs.id
    gpuProfileName: gpuProfileName
    gpuProfileType: gpuProfileType
    gpuInstances: gpuInstances
    storageAccountName: storage.outputs.name
    modelShareName: storage.outputs.modelShareName
    modelShareKeyUri: keyVault.outputs.modelShareKeyUri
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionApp'
  params: {
    location: location
    appName: names.app
    environmentId: environment.outputs.id
    gpuProfileName: gpuProfileName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    containerImage: containerImage
    registryServer: registryAccess.outputs.loginServer
    containerCpu: containerCpu
    containerMemory: containerMemory
    minReplicas: minReplicas
    maxReplicas: gpuInstances
    modelStorageName: environment.outputs.modelStorageName
    apiSecretUri: keyVault.outputs.apiSecretUri
    hfTokenUri: keyVault.outputs.hfTokenUri
    storageAccountName: storage.outputs.name
    graphContainerName: storage.outputs.graphContainerName
    workspaceContainerName: storage.outputs.workspaceContainerName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    modelId: modelId
    modelPath: modelPath
    transcoderSet: transcoderSet
    neuronpediaModelId: neuronpediaModelId
    hfEndpoint: hfEndpoint
    computeDtype: computeDtype
    tokenLimit: tokenLimit
    memoryLimitGb: memoryLimitGb
    signedUrlAllowedHosts: signedUrlAllowedHosts
    steerWaitSeconds: steerWaitSeconds
    graphWaitSeconds: graphWaitSeconds
    uploadTimeoutSeconds: uploadTimeoutSeconds
    jobRetentionHours: jobRetentionHours
    updateInterval: updateInterval
    batchesPerActivity: batchesPerActivity
    lazyEncoders: lazyEncoders
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------

@description('Base URL of the service (routes have no /api prefix).')
output appUrl string = functionApp.outputs.url

@description('Storage account that holds the models share, graphs and workspace.')
output storageAccountName string = storage.outputs.name

@description('File share for model weights and transcoders, mounted at /mnt/models.')
output modelShareName string = storage.outputs.modelShareName

@description('Key Vault that holds SECRET and HF_TOKEN.')
output keyVaultName string = names.keyVault
