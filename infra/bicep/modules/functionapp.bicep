// The Functions app, hosted natively on Container Apps (kind 'functionapp') on the GPU profile.
// Every application setting the code reads is set here, one env entry per name in
// GraphFunctions.Service/Configuration/SettingNames.cs (a test compares the two lists). Secrets are
// Key Vault references resolved by the platform with the app identity.

@description('Azure region of the app.')
param location string

@description('Name of the container app (2-32 lowercase letters, digits and hyphens).')
param appName string

@description('Resource id of the Container Apps environment.')
param environmentId string

@description('Workload profile the app runs on (the GPU profile).')
param gpuProfileName string

@description('User-assigned identity of the app: resource id and client id.')
param identityId string
param identityClientId string

@description('Image to run, e.g. myregistry.azurecr.io/graphfunctions:1.0.')
param containerImage string

@description('Login server of the registry that holds the image.')
param registryServer string

@description('vCPUs and memory of one replica; one replica uses one GPU.')
param containerCpu int
param containerMemory string

@description('Replicas that stay up. The Durable Azure Storage backend is not scaled from zero on Container Apps, so at least one.')
@minValue(1)
param minReplicas int

@description('Replicas at most: one per GPU instance.')
@minValue(1)
param maxReplicas int

@description('Environment storage of the models share, and where it is mounted.')
param modelStorageName string
param modelsMountPath string = '/mnt/models'

@description('Versionless Key Vault URIs of SECRET and HF_TOKEN.')
param apiSecretUri string
param hfTokenUri string

@description('Storage for the Functions host, the Durable task hub, graphs and the workspace.')
param storageAccountName string
param graphContainerName string
param workspaceContainerName string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Model and transcoders (see main.bicep for their meaning).')
param modelId string
param modelPath string
param transcoderSet string
param neuronpediaModelId string
param hfEndpoint string
param computeDtype string
param tokenLimit int
param memoryLimitGb string

@description('Delivery and service behaviour (see main.bicep).')
param signedUrlAllowedHosts string
param steerWaitSeconds int
param graphWaitSeconds int
param uploadTimeoutSeconds int
param jobRetentionHours int

@description('Batches between feature re-rankings.')
param updateInterval int

@description('Backward-pass batches per feature-rows activity.')
param batchesPerActivity int

@description('Stream encoders from disk instead of holding them.')
param lazyEncoders bool

// Container Apps secret names; each one resolves a Key Vault secret with the app identity.
var apiSecretName = 'api-secret'
var hfTokenSecretName = 'hf-token'

resource app 'Microsoft.App/containerApps@2025-07-01' = {
  name: appName
  location: location
  kind: 'functionapp'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    managedEnvironmentId: environmentId
    workloadProfileName: gpuProfileName
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        // The Functions host image listens on port 80.
        targetPort: 80
        transport: 'auto'
        allowInsecure: false
      }
      registries: [
        {
          server: registryServer
          identity: identityId
        }
      ]
      secrets: [
        {
          name: apiSecretName
          keyVaultUrl: apiSecretUri
          identity: identityId
        }
        {
          name: hfTokenSecretName
          keyVaultUrl: hfTokenUri
          identity: identityId
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'functions'
          image: containerImage
          resources: {
            cpu: containerCpu
            memory: containerMemory
          }
          env: [
            // Functions host and storage: identity-based host storage and Durable task hub.
            {
              name: 'FUNCTIONS_WORKER_RUNTIME'
              value: 'dotnet-isolated'
            }
            {
              // "/" is the viewer's jobs page, not the host's landing page.
              name: 'AzureWebJobsDisableHomepage'
              value: 'true'
            }
            {
              name: 'AzureWebJobsStorage__accountName'
              value: storageAccountName
            }
            {
              name: 'AzureWebJobsStorage__credential'
              value: 'managedidentity'
            }
            {
              name: 'AzureWebJobsStorage__clientId'
              value: identityClientId
            }
            {
              name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
              value: appInsightsConnectionString
            }
            {
              // The identity DefaultAzureCredential picks for the app's own Blob clients.
              name: 'AZURE_CLIENT_ID'
              value: identityClientId
            }
            // Secrets, as Key Vault references.
            {
              name: 'SECRET'
              secretRef: apiSecretName
            }
            {
              name: 'HF_TOKEN'
              secretRef: hfTokenSecretName
            }
            // Model and transcoders.
            {
              name: 'MODEL_ID'
              value: modelId
            }
            {
              name: 'MODEL_PATH'
              value: modelPath
            }
            {
              name: 'TRANSCODER_SET'
              value: transcoderSet
            }
            {
              name: 'NEURONPEDIA_MODEL_ID'
              value: neuronpediaModelId
            }
            {
              // Hub downloads are cached on the share, so replicas and restarts reuse them.
              name: 'HF_HOME'
              value: '${modelsMountPath}/hf-home'
            }
            {
              name: 'HF_ENDPOINT'
              value: hfEndpoint
            }
            {
              name: 'DEVICE'
              value: 'cuda'
            }
            {
              name: 'COMPUTE_DTYPE'
              value: computeDtype
            }
            {
              name: 'TOKEN_LIMIT'
              value: string(tokenLimit)
            }
            {
              name: 'MEMORY_LIMIT_GB'
              value: memoryLimitGb
            }
            {
              name: 'LAZY_ENCODERS'
              value: string(lazyEncoders)
            }
            {
              name: 'UPDATE_INTERVAL'
              value: string(updateInterval)
            }
            {
              name: 'BATCHES_PER_ACTIVITY'
              value: string(batchesPerActivity)
            }
            // Graph jobs, workspace and delivery.
            {
              // Empty: the workspace is the blob container below, shared by every GPU replica.
              name: 'WORKSPACE_PATH'
              value: ''
            }
            {
              name: 'WORKSPACE_BLOB_CONTAINER'
              value: workspaceContainerName
            }
            {
              name: 'GRAPH_BLOB_CONTAINER'
              value: graphContainerName
            }
            {
              name: 'SIGNED_URL_ALLOWED_HOSTS'
              value: signedUrlAllowedHosts
            }
            {
              name: 'STEER_WAIT_SECONDS'
              value: string(steerWaitSeconds)
            }
            {
              name: 'GRAPH_WAIT_SECONDS'
              value: string(graphWaitSeconds)
            }
            {
              name: 'UPLOAD_TIMEOUT_SECONDS'
              value: string(uploadTimeoutSeconds)
            }
            {
              name: 'JOB_RETENTION_HOURS'
              value: string(jobRetentionHours)
            }
            {
              // The viewer pages reach only loopback clients unless this is true; they then ask for the secret.
              name: 'VIEWER_PUBLIC'
              value: 'false'
            }
            {
              // Informational in Azure: the Functions host runs the Azure Storage provider and hub of host.json.
              name: 'DURABLE_STORAGE'
              value: 'azure-storage'
            }
            {
              name: 'DURABLE_TASK_HUB'
              value: 'GraphFunctions'
            }
            {
              // Informational in Azure too: the worker reads maxConcurrentActivityFunctions from host.json (the same 2).
              name: 'DURABLE_ACTIVITY_SLOTS'
              value: '2'
            }
          ]
          volumeMounts: [
            {
              volumeName: 'models'
              mountPath: modelsMountPath
            }
          ]
        }
      ]
      volumes: [
        {
          name: 'models'
          storageType: 'AzureFile'
          storageName: modelStorageName
        }
      ]
      // Functions on Container Apps derives its KEDA rules from the app's triggers (custom rules
      // are rejected for kind 'functionapp'); the template only bounds the replica count.
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
      }
    }
  }
}

output url string = 'https://${app.properties.configuration.ingress.fqdn}'
