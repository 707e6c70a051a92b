// Package cabundle keeps the caBundle of Capstan's own webhook
// configurations equal to the mesh's trust bundle, when the webhook server
// is served with a certificate from the mesh CA.
package cabundle
