package commands

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capstanmesh/capstan/cli/analyze"
)

type namedList struct {
	what string
	list client.ObjectList
}

// coreListSet holds one list of each Kubernetes kind the analyzers read.
type coreListSet []namedList

func coreLists() coreListSet {
	return coreListSet{
		{"Namespaces", &corev1.NamespaceList{}}, {"Pods", &corev1.PodList{}}, {"Services", &corev1.ServiceList{}},
		{"ReplicaSets", &appsv1.ReplicaSetList{}}, {"Deployments", &appsv1.DeploymentList{}},
		{"StatefulSets", &appsv1.StatefulSetList{}}, {"DaemonSets", &appsv1.DaemonSetList{}},
		{"Jobs", &batchv1.JobList{}}, {"CronJobs", &batchv1.CronJobList{}}, {"Ingresses", &networkingv1.IngressList{}},
	}
}

// into copies the lists' items into in.
func (s coreListSet) into(in *analyze.Inputs) {
	for _, l := range s {
		switch v := l.list.(type) {
		case *corev1.NamespaceList:
			in.Namespaces = v.Items
		case *corev1.PodList:
			in.Pods = v.Items
		case *corev1.ServiceList:
			in.Services = v.Items
		case *appsv1.ReplicaSetList:
			in.ReplicaSets = v.Items
		case *appsv1.DeploymentList:
			in.Deployments = v.Items
		case *appsv1.StatefulSetList:
			in.StatefulSets = v.Items
		case *appsv1.DaemonSetList:
			in.DaemonSets = v.Items
		case *batchv1.JobList:
			in.Jobs = v.Items
		case *batchv1.CronJobList:
			in.CronJobs = v.Items
		case *networkingv1.IngressList:
			in.Ingresses = v.Items
		}
	}
}
