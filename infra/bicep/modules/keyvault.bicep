// Key Vault for every secret the deployment needs: the API secret (SECRET), the Hugging Face token
// (HF_TOKEN) and the storage key Container Apps uses to mount the models share. Access is by Azure
// RBAC; the app identity may only read secrets (Key Vault Secrets User). The app and the
// environment refer to secrets by URI, so no secret value appears in their configuration.

@description('Azure region of the vault.')
param location string

@description('Globally unique vault name (3-24 letters, digits and hyphens).')
@minLength(3)
@maxLength(24)
param keyVaultName string

@description('Principal (object) id of the app identity.')
param principalId string

@description('Value of SECRET, the x-secret-key every request must carry.')
@secure()
param apiSecret string

@description('Value of HF_TOKEN, a Hugging Face read token.')
@secure()
param hfToken string

@description('Storage account whose key mounts the models share.')
param storageAccountName string

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2025-05-01' = {
  name: keyVaultName
  location: location
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
  }
}

resource apiSecretEntry 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = {
  parent: vault
  name: 'api-secret'
  properties: {
    value: apiSecret
  }
}

resource hfTokenEntry 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = {
  parent: vault
  name: 'hf-token'
  properties: {
    value: hfToken
  }
}

// Read from the account at deployment time and written straight into the vault.
resource modelShareKeyEntry 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = {
  parent: vault
  name: 'models-share-key'
  properties: {
    value: storage.listKeys().keys[0].value
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, 'Key Vault Secrets User')
  scope: vault
  properties: {
    // Key Vault Secrets User
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Versionless URIs: Container Apps picks up a rotated secret without a redeployment.
output apiSecretUri string = apiSecretEntry.properties.secretUri
output hfTokenUri string = hfTokenEntry.properties.secretUri
output modelShareKeyUri string = modelShareKeyEntry.properties.secretUri
