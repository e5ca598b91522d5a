import CodeDomain
