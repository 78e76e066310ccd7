// The storage account: Functions host storage and the Durable task hub (queues, tables, blobs),
// the `graphs` and `workspace` blob containers, and the `models` file share that Container Apps
// mounts for weights, transcoders and the Hugging Face cache. The app identity gets the three
// data-plane roles the Durable Azure Storage provider needs; nothing broader.

@description('Azure region of the account.')
param location string

@description('Globally unique storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param storageAccountName string

@description('Principal (object) id of the app identity.')
param principalId string

@description('Blob container for delivered graphs (GRAPH_BLOB_CONTAINER).')
param graphContainerName string = 'graphs'

@description('Blob container for job row blocks and intermediate files (WORKSPACE_BLOB_CONTAINER).')
param workspaceContainerName string = 'workspace'

@description('File share mounted into the app for model weights and transcoders.')
param modelShareName string = 'models'

@description('Size limit of the models share, in GiB.')
@minValue(100)
param modelShareQuotaGiB int = 512

@description('Days after which workspace blobs (row blocks of finished jobs) are deleted.')
@minValue(1)
param workspaceRetentionDays int = 7

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' = {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // Container Apps mounts Azure Files (SMB) with the account key, so shared-key access stays
    // enabled; the key only ever travels through Key Vault (keyvault.bicep). The app itself reaches
    // blobs, queues and tables with its managed identity.
    allowSharedKeyAccess: true
    defaultToOAuthAuthentication: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-06-01' = {
  parent: storage
  name: 'default'
}

resource graphContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobService
  name: graphContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource workspaceContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobService
  name: workspaceContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2025-06-01' = {
  parent: storage
  name: 'default'
}

resource modelShare 'Microsoft.Storage/storageAccounts/fileServices/shares@2025-06-01' = {
  parent: fileService
  name: modelShareName
  properties: {
    shareQuota: modelShareQuotaGiB
    enabledProtocols: 'SMB'
  }
}

// Row blocks are only needed while a job runs; a lifecycle rule keeps the workspace from growing.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2025-06-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-workspace'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${workspaceContainer.name}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: workspaceRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

// Durable task hub and app data: blobs (leases, large messages, graphs, workspace), queues (work
// items), tables (history, instances). Data-plane roles only, scoped to this account.
resource blobDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, 'Storage Blob Data Contributor')
  scope: storage
  properties: {
    // Storage Blob Data Contributor
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, 'Storage Queue Data Contributor')
  scope: storage
  properties: {
    // Storage Queue Data Contributor
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, 'Storage Table Data Contributor')
  scope: storage
  properties: {
    // Storage Table Data Contributor
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = storage.name
output graphContainerName string = graphContainer.name
output workspaceContainerName string = workspaceContainer.name
output modelShareName string = modelShare.name
