"""REST endpoints for accounts: who am I (lets an integration check its token)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsApproved
from accounts.selectors import sender_grants_for


class MeApi(APIView):
    """The authenticated user, their role and the numbers they may send from."""

    permission_classes = [IsApproved]

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        email = serializers.EmailField()
        role = serializers.CharField()
        senders = serializers.ListField(child=serializers.CharField())

    def get(self, request):
        data = {
            "username": request.user.username,
            "email": request.user.email,
            "role": request.user.role,
            "senders": list(sender_grants_for(user=request.user).values_list("number", flat=True)),
        }
        return Response(self.OutputSerializer(data).data)
