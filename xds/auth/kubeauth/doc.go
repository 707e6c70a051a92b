// Package kubeauth is the Kubernetes side of xDS stream authentication:
// a TokenReview-backed auth.Authenticator, the pod lookup the server binds
// callers to, and the controller that tells the server when a pod changes.
package kubeauth
