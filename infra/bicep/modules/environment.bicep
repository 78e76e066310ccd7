// The Container Apps environment: a Consumption (CPU) profile, which every workload-profiles
// environment has, plus one GPU profile for the Functions app. A GPU profile can only be added
// when the environment is created. Also registers the models file share for volume mounts; its
// key is read from Key Vault with the app identity, so the environment holds no secret.

@description('Azure region; it must offer the chosen GPU profile type.')
param location string

@description('Name of the environment.')
param environmentName string

@description('Log Analytics workspace that receives the container logs.')
param logAnalyticsName string

@description('Resource id of the user-assigned identity that reads the share key from Key Vault.')
param identityId string

@description('Name the app uses to select the GPU profile.')
param gpuProfileName string

@description('Serverless (Consumption-GPU-*) or dedicated (NC*-A100) GPU profile type.')
param gpuProfileType string

@description('GPU instances: the node limit of a dedicated profile (one app replica per node).')
@minValue(1)
param gpuInstances int

@description('Storage account and share mounted into the app.')
param storageAccountName string
param modelShareName string

@description('Versionless Key Vault URI of the storage account key.')
param modelShareKeyUri string

@description('Name under which the share is registered in the environment.')
param modelStorageName string = 'models'

// Serverless GPU profiles scale per replica; dedicated ones need node counts.
var isServerlessGpu = startsWith(gpuProfileType, 'Consumption-GPU-')

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2025-07-01' existing = {
  name: logAnalyticsName
}

resource environment 'Microsoft.App/managedEnvironments@2025-07-01' = {
  name: environmentName
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logAnalytics.properties.customerId
        sharedKey: logAnalytics.listKeys().primarySharedKey
      }
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
      {
        name: gpuProfileName
        workloadProfileType: gpuProfileType
        minimumCount: isServerlessGpu ? null : 1
        maximumCount: isServerlessGpu ? null : gpuInstances
      }
    ]
  }
}

resource modelStorage 'Microsoft.App/managedEnvironments/storages@2025-07-01' = {
  parent: environment
  name: modelStorageName
  properties: {
    azureFile: {
      accountName: storageAccountName
      shareName: modelShareName
      accessMode: 'ReadWrite'
      accountKeyVaultProperties: {
        keyVaultUrl: modelShareKeyUri
        identity: identityId
      }
    }
  }
}

output id string = environment.id
output modelStorageName string = modelStorage.name
