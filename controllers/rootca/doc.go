// Package rootca publishes the mesh's trust bundle as the ConfigMap
// capstan-root-ca in every namespace with injection enabled, where injected
// proxies read it to verify the xDS server.
package rootca
