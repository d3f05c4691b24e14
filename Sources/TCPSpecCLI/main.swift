print("tcpspec")
