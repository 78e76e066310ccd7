// The one user-assigned managed identity the app runs as. It pulls the image, reads the Key Vault
// secrets and reaches Blob, Queue and Table storage; every permission is a role assignment made
// next to the resource it applies to (storage.bicep, keyvault.bicep, registry-access.bicep).

@description('Azure region of the identity.')
param location string

@description('Name of the identity.')
param identityName string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: identityName
  location: location
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
