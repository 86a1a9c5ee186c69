"""The Kubernetes platform core shared by the kind and cluster platforms: the Platform API over the official
`kubernetes` client. What brings the cluster and the mesh is behind `contracts`."""
