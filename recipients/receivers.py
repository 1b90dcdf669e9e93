# receivers connect in ready(); filled by the consent issue
